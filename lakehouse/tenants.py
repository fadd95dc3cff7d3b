"""Tenants as records in the system bucket, readable by every process (issue 14).

The record lives here, at the bottom, because more than the storage service needs it: routing
takes a shared bucket's first key segment as the tenant when it is a registered id, and names
the tenant's tables ``delta.<tenant_schema>.<dataset>``. Access keys are stored only as slow
hashes; issuing and checking them is the storage service's business (``storage_service.tenants``).

One object per tenant (``lakewire-system/tenants/<id>.json``) so that changing one tenant never
rewrites another's record.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from lakehouse.objectstore import (
    BucketNotFound,
    InvalidName,
    ObjectNotFound,
    ObjectStore,
    validate_bucket_name,
    validate_key,
)
from lakehouse.routes import SYSTEM_BUCKET
from lakehouse.settings import Settings

PREFIX = "tenants/"
# DECISIONS "Routes": ids that would collide with schemas or principals the platform owns.
RESERVED_TENANT_IDS = frozenset({"default", "system", "information_schema", "lakewire", "admin"})
TRINO_USER_PREFIX = "tenant-"


class TenantKey(BaseModel):
    key_id: str
    hash: str  # scrypt$n$r$p$salt$digest, never the key
    created: str
    expires_at: str | None = None  # ISO 8601, UTC; None: until revoked


class Tenant(BaseModel):
    id: str
    name: str
    scopes: list[str] = Field(
        description="'bucket/prefix/' (a prefix of a shared bucket) or 'bucket' (all of it)."
    )
    disabled: bool = False
    created: str
    keys: list[TenantKey] = []
    s3_access_key: str | None = None  # its MinIO user, when the platform makes one

    def grants(self) -> list[Grant]:
        return [Grant.parse(s) for s in self.scopes]


class Grant(BaseModel):
    """One bucket, or one prefix of one bucket, a tenant may use."""

    bucket: str
    prefix: str = ""  # "" = the whole bucket

    @classmethod
    def parse(cls, text: str) -> Grant:
        bucket, _, prefix = text.partition("/")
        return cls(bucket=bucket, prefix=prefix)

    def covers(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and key.startswith(self.prefix)

    def overlaps(self, other: Grant) -> bool:
        return self.bucket == other.bucket and (
            self.prefix.startswith(other.prefix) or other.prefix.startswith(self.prefix)
        )

    def __str__(self) -> str:
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket


def validate_tenant_id(tenant_id: str) -> str:
    """Bucket name rules (so the id can name a bucket or a prefix anywhere) minus reserved ids."""
    validate_bucket_name(tenant_id)
    if tenant_id in RESERVED_TENANT_IDS:
        raise InvalidName(
            f"tenant id '{tenant_id}' is reserved ({', '.join(sorted(RESERVED_TENANT_IDS))})"
        )
    return tenant_id


def tenant_schema(tenant_id: str) -> str:
    """The SQL schema of a tenant's tables: the id with '-' as '_' (a plain identifier)."""
    return tenant_id.replace("-", "_")


def tenant_trino_user(tenant_id: str) -> str:
    """The tenant's Trino principal. A prefix no platform principal has (``lakewire-…``), so one
    rule pattern (``tenant-.*``) can close Trino to every tenant the rules do not name."""
    return f"{TRINO_USER_PREFIX}{tenant_id}"


def tenant_kms_key(tenant_id: str) -> str:
    """The name of the tenant's SSE-KMS key, where the store has a KMS (created there)."""
    return f"lakewire-tenant-{tenant_id}"


def default_scopes(settings: Settings, tenant_id: str) -> list[str]:
    """``{bucket}/{tenant_id}/`` in every shared bucket. The lake bucket is not one: tables are
    reached through SQL, in the tenant's own schema."""
    return [f"{b}/{tenant_id}/" for b in settings.default_buckets if b != settings.lake_bucket]


def check_scopes(settings: Settings, scopes: list[str]) -> list[Grant]:
    """Parsed grants, or ``InvalidName`` naming the scope that is wrong."""
    grants: list[Grant] = []
    for text in scopes:
        grant = Grant.parse(text)
        validate_bucket_name(grant.bucket)
        if grant.bucket in (SYSTEM_BUCKET, settings.lake_bucket):
            raise InvalidName(
                f"scope '{text}': the {grant.bucket} bucket is the platform's "
                "(tables are reached through SQL)"
            )
        if grant.prefix:
            if not grant.prefix.endswith("/"):
                raise InvalidName(f"scope '{text}': a prefix must end with '/'")
            validate_key(grant.prefix[:-1])
        if any(g.bucket == grant.bucket for g in grants):
            raise InvalidName(f"scope '{text}': one scope per bucket")
        grants.append(grant)
    if not grants:
        raise InvalidName("a tenant needs at least one scope")
    return grants


class TenantStore:
    """The tenant records of one object store. Not locked: the storage service is the one
    writer and serialises its changes."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def all(self) -> list[Tenant]:
        try:
            infos = list(self.store.iter_objects(SYSTEM_BUCKET, PREFIX))
        except BucketNotFound:
            return []
        out = []
        for info in sorted(infos, key=lambda i: i.key):
            if info.key.endswith(".json"):
                try:
                    out.append(
                        Tenant.model_validate_json(self.store.get_bytes(SYSTEM_BUCKET, info.key))
                    )
                except ObjectNotFound:  # deleted while listing
                    continue
        return out

    def put(self, tenant: Tenant) -> None:
        if not self.store.bucket_exists(SYSTEM_BUCKET):
            self.store.create_bucket(SYSTEM_BUCKET)
        body = json.dumps(tenant.model_dump(mode="json"), indent=1).encode()
        self.store.put(SYSTEM_BUCKET, f"{PREFIX}{tenant.id}.json", body)

    def delete(self, tenant_id: str) -> None:
        self.store.delete(SYSTEM_BUCKET, f"{PREFIX}{tenant_id}.json")


def tenant_ids(store: ObjectStore) -> set[str]:
    """The registered tenant ids (routing's ``{tenant}``: a first key segment that is one)."""
    return {t.id for t in TenantStore(store).all()}
