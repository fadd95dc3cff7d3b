"""The tenant registry of the storage service: tenants, their access keys, and key checks.

A key is ``lw.<tenant>.<key id>.<secret>``: the tenant and key id say which record to check, so
one slow hash (stdlib scrypt) is computed, not one per key on file. The key is shown once, when
it is made; only its hash is stored. A key that checked out is remembered in memory under a
keyed fast digest, so the slow hash is paid once per key and process, not once per request.

Rotation without downtime: a tenant holds at most two keys, so a new one can be issued while
the old one still works, and the old one revoked once every client has the new one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from lakehouse.objectstore import InvalidName, ObjectStore
from lakehouse.settings import Settings
from lakehouse.tenants import (
    Tenant,
    TenantKey,
    TenantStore,
    check_scopes,
    default_scopes,
    validate_tenant_id,
)

log = logging.getLogger(__name__)

KEY_PREFIX = "lw"
MAX_KEYS = 2  # the old and the new one during a rotation
# scrypt cost: 16 MiB and some tens of ms per check; the memory makes guessing on GPUs dear.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
# Another process (a second service replica) may have changed the records: re-read this often.
RELOAD_SECONDS = 5.0


class TenantNotFound(LookupError):
    pass


class TenantConflict(ValueError):
    pass


class AfterChangeFailed(RuntimeError):
    """The change is saved, but what follows it (Trino's rules file) failed: the caller says so."""


class BadKey(Exception):
    """Unknown, wrong, expired or disabled: the caller answers 401 with this message."""


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def secret_matches(secret: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def split_key(presented: str) -> tuple[str, str, str] | None:
    """(tenant id, key id, secret) of a tenant key, or None for anything else."""
    parts = presented.split(".")
    if len(parts) != 4 or parts[0] != KEY_PREFIX:
        return None
    return parts[1], parts[2], parts[3]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds")


class TenantRegistry:
    """Changes are serialised in this process; reads come from a copy refreshed on every
    change made here and every ``RELOAD_SECONDS``."""

    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        clock: Callable[[], datetime] | None = None,
        on_change: Callable[[list[Tenant]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.records = TenantStore(store)
        self.clock = clock or (lambda: datetime.now(UTC))
        # Told every tenant after each change made here, under the lock, so derived state (the
        # Trino rules file) follows the changes in the order they were made.
        self.on_change = on_change
        self._lock = threading.Lock()
        self._tenants: dict[str, Tenant] | None = None
        self._loaded = 0.0
        self._checked: dict[bytes, str] = {}  # fast digest of a key -> the hash it matched
        self._pepper = secrets.token_bytes(32)  # keys the fast digests; never leaves memory

    # -- reading ---------------------------------------------------------------------------------
    def _current(self) -> dict[str, Tenant]:
        with self._lock:
            if self._tenants is None or time.monotonic() - self._loaded > RELOAD_SECONDS:
                self._reload()
            assert self._tenants is not None
            return self._tenants

    def _reload(self) -> None:
        self._tenants = {t.id: t for t in self.records.all()}
        self._loaded = time.monotonic()

    def all(self) -> list[Tenant]:
        return sorted(self._current().values(), key=lambda t: t.id)

    def get(self, tenant_id: str) -> Tenant:
        tenant = self._current().get(tenant_id)
        if tenant is None:
            raise TenantNotFound(f"no tenant '{tenant_id}'")
        return tenant

    def authenticate(self, presented: str) -> tuple[Tenant, str]:
        """The tenant and key id a key belongs to; ``BadKey`` says why not. The secret is
        checked before anything about the tenant is told, so a guess learns nothing."""
        parts = split_key(presented)
        if parts is None:
            raise BadKey("missing or wrong API key")
        tenant_id, key_id, secret = parts
        tenant = self._current().get(tenant_id)
        key = next((k for k in tenant.keys if k.key_id == key_id), None) if tenant else None
        if tenant is None or key is None:
            raise BadKey("missing or wrong API key")
        fast = hmac.new(self._pepper, presented.encode(), hashlib.sha256).digest()
        if self._checked.get(fast) != key.hash:
            if not secret_matches(secret, key.hash):
                raise BadKey("missing or wrong API key")
            self._checked[fast] = key.hash
        if tenant.disabled:
            raise BadKey(f"tenant '{tenant.id}' is disabled")
        if key.expires_at is not None and self.clock() >= datetime.fromisoformat(key.expires_at):
            raise BadKey(f"the key {key.key_id} of tenant '{tenant.id}' expired")
        return tenant, key_id

    # -- changing --------------------------------------------------------------------------------
    def _new_key(self, tenant_id: str, expires_at: datetime | None) -> tuple[TenantKey, str]:
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        if expires_at is not None and expires_at <= self.clock():
            raise InvalidName("expires_at must be in the future")
        key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        record = TenantKey(
            key_id=key_id,
            hash=hash_secret(secret),
            created=_iso(self.clock()),
            expires_at=_iso(expires_at) if expires_at else None,
        )
        return record, f"{KEY_PREFIX}.{tenant_id}.{key_id}.{secret}"

    def _check_overlap(self, tenant: Tenant) -> None:
        """Two tenants sharing a prefix would see each other's data: refused."""
        assert self._tenants is not None
        mine = tenant.grants()
        for other in self._tenants.values():
            if other.id == tenant.id:
                continue
            for g in mine:
                for o in other.grants():
                    if g.overlaps(o):
                        raise TenantConflict(
                            f"scope '{g}' overlaps tenant '{other.id}''s scope '{o}'"
                        )

    def create(
        self,
        tenant_id: str,
        name: str | None = None,
        scopes: list[str] | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[Tenant, str]:
        """The new tenant and its first key (the only time the key is shown)."""
        validate_tenant_id(tenant_id)
        wanted = scopes if scopes is not None else default_scopes(self.settings, tenant_id)
        grants = check_scopes(self.settings, wanted)
        with self._lock:
            self._reload()
            assert self._tenants is not None
            if tenant_id in self._tenants:
                raise TenantConflict(f"tenant '{tenant_id}' exists")
            key, plain = self._new_key(tenant_id, expires_at)
            tenant = Tenant(
                id=tenant_id,
                name=name or tenant_id,
                scopes=[str(g) for g in grants],
                created=_iso(self.clock()),
                keys=[key],
            )
            self._check_overlap(tenant)
            # A new tenant is refused by Trino until its rules are written: a failure here is
            # logged, not raised, so the key made above is not lost.
            self._save(tenant, strict=False)
        return tenant, plain

    def update(
        self,
        tenant_id: str,
        *,
        name: str | None = None,
        scopes: list[str] | None = None,
        disabled: bool | None = None,
        s3_access_key: str | None = None,
    ) -> Tenant:
        changes: dict[str, object] = {}
        if s3_access_key is not None:
            changes["s3_access_key"] = s3_access_key
        if name is not None:
            changes["name"] = name
        if scopes is not None:
            changes["scopes"] = [str(g) for g in check_scopes(self.settings, scopes)]
        if disabled is not None:
            changes["disabled"] = disabled
        with self._lock:
            tenant = self._fresh(tenant_id).model_copy(update=changes)
            self._check_overlap(tenant)
            # Disabling must reach Trino's rules, or the caller hears it did not.
            self._save(tenant, strict=disabled is not None)
        return tenant

    def add_key(self, tenant_id: str, expires_at: datetime | None = None) -> tuple[Tenant, str]:
        with self._lock:
            tenant = self._fresh(tenant_id)
            if len(tenant.keys) >= MAX_KEYS:
                raise TenantConflict(
                    f"tenant '{tenant_id}' has {MAX_KEYS} keys: revoke one before adding another"
                )
            key, plain = self._new_key(tenant_id, expires_at)
            tenant = tenant.model_copy(update={"keys": [*tenant.keys, key]})
            self._save(tenant, strict=False)  # keys are not in Trino's rules; never lose one
        return tenant, plain

    def revoke_key(self, tenant_id: str, key_id: str) -> Tenant:
        with self._lock:
            tenant = self._fresh(tenant_id)
            keys = [k for k in tenant.keys if k.key_id != key_id]
            if len(keys) == len(tenant.keys):
                raise TenantNotFound(f"tenant '{tenant_id}' has no key {key_id}")
            tenant = tenant.model_copy(update={"keys": keys})
            self._save(tenant, strict=False)
        return tenant

    def delete(self, tenant_id: str) -> None:
        with self._lock:
            self._fresh(tenant_id)
            self.records.delete(tenant_id)
            self._reload()
            self._changed()

    def _fresh(self, tenant_id: str) -> Tenant:
        self._reload()
        assert self._tenants is not None
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            raise TenantNotFound(f"no tenant '{tenant_id}'")
        return tenant

    def _save(self, tenant: Tenant, strict: bool = True) -> None:
        self.records.put(tenant)
        assert self._tenants is not None
        self._tenants[tenant.id] = tenant
        self._changed(strict)

    def _changed(self, strict: bool = True) -> None:
        if self.on_change is None:
            return
        assert self._tenants is not None
        try:
            self.on_change(sorted(self._tenants.values(), key=lambda t: t.id))
        except Exception as exc:
            log.error("tenants changed, but what follows the change failed: %s", exc)
            if strict:
                raise AfterChangeFailed(str(exc)) from exc
