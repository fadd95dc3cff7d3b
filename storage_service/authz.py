"""Who may do what: every authorisation rule of the API, in one module (DECISIONS "Store,
tenants and credentials": the store stays principal-free; the API layer checks scope first).

The admin (today's API key) may do everything. A tenant may use the buckets and prefixes of its
scope: list, read, write and delete objects there, presign links there (with a short maximum
expiry, since S3 links cannot be revoked), and set notification and lifecycle rules that
only touch its prefixes. Everything about buckets themselves (create, rename, delete,
versioning), routes, tenants and metrics is the admin's. A refusal is ``Denied`` (403): the app
records it in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException

from lakehouse.tenants import Grant, Tenant, tenant_schema

ADMIN_ID = "admin"
# Tenants' presigned links live at most this long: an S3 link is signed with the service's
# credentials and cannot be revoked, so a disabled tenant's links must die soon on their own.
TENANT_PRESIGN_MAX_SECONDS = 900


@dataclass(frozen=True)
class Principal:
    id: str  # "admin", or the tenant id
    tenant: Tenant | None = None
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.tenant is None

    @property
    def grants(self) -> list[Grant]:
        return self.tenant.grants() if self.tenant is not None else []

    def grant_in(self, bucket: str) -> Grant | None:
        return next((g for g in self.grants if g.bucket == bucket), None)

    @property
    def schema(self) -> str | None:
        """The one SQL schema a tenant may read; None: every schema (admin)."""
        return tenant_schema(self.tenant.id) if self.tenant is not None else None


ADMIN = Principal(ADMIN_ID)


class Denied(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(403, detail=detail)


def admin_only(who: Principal, what: str) -> None:
    if not who.is_admin:
        raise Denied(f"{what} is for the admin; tenant '{who.id}' may not")


def bucket(who: Principal, name: str) -> None:
    """The bucket holds some of the caller's scope."""
    if not who.is_admin and who.grant_in(name) is None:
        raise Denied(f"bucket '{name}' is outside tenant '{who.id}''s scope")


def obj(who: Principal, name: str, key: str) -> None:
    if who.is_admin:
        return
    grant = who.grant_in(name)
    if grant is None or not grant.covers(name, key):
        where = f" (its scope here is '{grant}')" if grant else ""
        raise Denied(f"'{name}/{key}' is outside tenant '{who.id}''s scope{where}")


@dataclass(frozen=True)
class Listing:
    """What a listing shows: the store's listing of ``prefix``, or (``folders`` not None) only
    the folder that leads into the caller's prefix, for a tenant listing above it."""

    prefix: str
    folders: list[str] | None = None


def listing(who: Principal, name: str, prefix: str, delimiter: str | None) -> Listing:
    """A tenant listing a shared bucket sees only its prefix."""
    if who.is_admin:
        return Listing(prefix)
    grant = who.grant_in(name)
    if grant is None:
        raise Denied(f"bucket '{name}' is outside tenant '{who.id}''s scope")
    if prefix.startswith(grant.prefix):
        return Listing(prefix)
    if grant.prefix.startswith(prefix):
        if not delimiter:  # a flat listing of everything below: exactly the tenant's part
            return Listing(grant.prefix)
        cut = grant.prefix.find(delimiter, len(prefix))
        return Listing(prefix, [grant.prefix[: cut + len(delimiter)] if cut >= 0 else prefix])
    raise Denied(f"'{name}/{prefix}' is outside tenant '{who.id}''s scope (it is '{grant}')")


def rule_prefixes(who: Principal, name: str, prefixes: list[str]) -> None:
    """Notification and lifecycle rules: a tenant's rules must each lie inside its prefix."""
    if who.is_admin:
        return
    grant = who.grant_in(name)
    if grant is None:
        raise Denied(f"bucket '{name}' is outside tenant '{who.id}''s scope")
    for prefix in prefixes:
        if not prefix.startswith(grant.prefix):
            raise Denied(
                f"a rule on prefix '{prefix}' reaches outside tenant '{who.id}''s scope "
                f"'{grant}': give each rule a prefix under '{grant.prefix}'"
            )


def owns_rule(who: Principal, name: str, prefix: str) -> bool:
    """Whether a rule is the caller's to see and replace (under its prefix)."""
    if who.is_admin:
        return True
    grant = who.grant_in(name)
    return grant is not None and prefix.startswith(grant.prefix)


def presign_max_seconds(who: Principal, configured: int) -> int:
    return configured if who.is_admin else min(configured, TENANT_PRESIGN_MAX_SECONDS)
