"""Tenants API (admin only): ``/api/tenants`` CRUD, keys issued once, rotation; ``/api/whoami``.

A key appears in exactly one answer, the one that made it (``key`` in the body); every other
answer lists keys by id, creation and expiry only. With a MinIO admin credential configured,
each tenant is also a MinIO user whose policy is its scope (``storage_service.minio_users``):
its S3 secret, too, is shown once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, Field

from lakehouse.tenants import Tenant, tenant_schema
from storage_service.access import Caller, Runtime, require_key
from storage_service.authz import presign_max_seconds
from storage_service.tenants import AfterChangeFailed, TenantConflict, TenantNotFound

router = APIRouter(prefix="/api", tags=["tenants"])
admin = [Depends(require_key)]


class TenantCreate(BaseModel):
    id: str = Field(description="Bucket name rules; not a reserved id (admin, default, ...).")
    name: str | None = Field(default=None, description="Display name; default: the id.")
    scopes: list[str] | None = Field(
        default=None,
        description="'bucket/prefix/' or 'bucket'; default: '<bucket>/<id>/' in every shared "
        "bucket.",
    )
    expires_at: datetime | None = Field(default=None, description="When the first key expires.")


class TenantChange(BaseModel):
    name: str | None = None
    scopes: list[str] | None = None
    disabled: bool | None = None


class KeyCreate(BaseModel):
    expires_at: datetime | None = None


class KeyView(BaseModel):
    key_id: str
    created: str
    expires_at: str | None


class TenantView(BaseModel):
    id: str
    name: str
    scopes: list[str]
    schema_name: str = Field(description="The SQL schema of the tenant's tables.")
    disabled: bool
    created: str
    keys: list[KeyView]
    s3_access_key: str | None = Field(default=None, description="Its MinIO user, if any.")


class TenantWithKey(TenantView):
    key: str = Field(description="The new access key. Shown this once; only its hash is kept.")
    key_id: str
    s3_secret_key: str | None = Field(
        default=None, description="The MinIO user's secret (on creation, once)."
    )


class WhoAmI(BaseModel):
    principal: str
    admin: bool
    scopes: list[str]
    schema_name: str | None
    presign_max_seconds: int


def _view(t: Tenant) -> TenantView:
    return TenantView(
        id=t.id,
        name=t.name,
        scopes=t.scopes,
        schema_name=tenant_schema(t.id),
        disabled=t.disabled,
        created=t.created,
        keys=[KeyView(key_id=k.key_id, created=k.created, expires_at=k.expires_at) for k in t.keys],
        s3_access_key=t.s3_access_key,
    )


def _with_key(t: Tenant, key: str, s3_secret: str | None = None) -> TenantWithKey:
    return TenantWithKey(
        **_view(t).model_dump(), key=key, key_id=key.split(".")[2], s3_secret_key=s3_secret
    )


@contextmanager
def _answers() -> Iterator[None]:
    try:
        yield
    except TenantNotFound as exc:
        raise HTTPException(404, detail=str(exc)) from None
    except TenantConflict as exc:
        raise HTTPException(409, detail=str(exc)) from None
    except AfterChangeFailed as exc:
        raise _rules_not_written(exc) from None


def _rules_not_written(exc: AfterChangeFailed) -> HTTPException:
    return HTTPException(502, detail=f"saved; Trino's rules file was not rewritten: {exc}")


@router.get("/whoami")
def whoami(who: Caller, rt: Runtime) -> WhoAmI:
    """Who the key in hand is and what it may reach (the page shows only that)."""
    return WhoAmI(
        principal=who.id,
        admin=who.is_admin,
        scopes=[str(g) for g in who.grants],
        schema_name=who.schema,
        presign_max_seconds=presign_max_seconds(who, rt.settings.presign_max_seconds),
    )


@router.get("/tenants", dependencies=admin)
def list_tenants(rt: Runtime) -> list[TenantView]:
    return [_view(t) for t in rt.tenants.all()]


@router.post("/tenants", status_code=201, dependencies=admin)
def create_tenant(body: TenantCreate, rt: Runtime) -> TenantWithKey:
    with _answers():
        tenant, key = rt.tenants.create(body.id, body.name, body.scopes, body.expires_at)
    if rt.minio_users is None:
        return _with_key(tenant, key)
    try:
        access_key, secret_key = rt.minio_users.create(tenant)
    except Exception as exc:  # no half-made tenant: without its MinIO user it is removed
        with suppress(AfterChangeFailed):  # logged; the MinIO refusal is what the admin needs
            rt.tenants.delete(tenant.id)
        raise HTTPException(502, detail=f"MinIO refused the tenant ({exc}); not created") from exc
    tenant = rt.tenants.update(tenant.id, s3_access_key=access_key)
    return _with_key(tenant, key, secret_key)


@router.get("/tenants/{tenant_id}", dependencies=admin)
def get_tenant(tenant_id: str, rt: Runtime) -> TenantView:
    with _answers():
        return _view(rt.tenants.get(tenant_id))


@router.patch("/tenants/{tenant_id}", dependencies=admin)
def change_tenant(tenant_id: str, body: TenantChange, rt: Runtime) -> TenantView:
    """Rename, re-scope, disable or enable. Disabling refuses the tenant's keys at once."""
    unsynced: AfterChangeFailed | None = None
    with _answers():
        try:
            tenant = rt.tenants.update(
                tenant_id, name=body.name, scopes=body.scopes, disabled=body.disabled
            )
        except AfterChangeFailed as exc:  # saved: MinIO must still follow, then say so
            unsynced, tenant = exc, rt.tenants.get(tenant_id)
    if rt.minio_users is not None and tenant.s3_access_key:
        with _store_errors():
            if body.scopes is not None:
                rt.minio_users.rescope(tenant)
            if body.disabled is not None:
                rt.minio_users.set_disabled(tenant.s3_access_key, body.disabled)
    if unsynced is not None:
        raise _rules_not_written(unsynced)
    return _view(tenant)


@contextmanager
def _store_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        raise HTTPException(
            502, detail=f"saved; MinIO refused the matching change to its user: {exc}"
        ) from exc


@router.delete("/tenants/{tenant_id}", status_code=204, dependencies=admin)
def delete_tenant(tenant_id: str, rt: Runtime) -> Response:
    """The tenant and its keys go; objects under its prefixes stay (the admin decides)."""
    unsynced: AfterChangeFailed | None = None
    with _answers():
        tenant = rt.tenants.get(tenant_id)
        try:
            rt.tenants.delete(tenant_id)
        except AfterChangeFailed as exc:
            unsynced = exc
    if rt.minio_users is not None and tenant.s3_access_key:
        with _store_errors():
            rt.minio_users.remove(tenant.id, tenant.s3_access_key)
    if unsynced is not None:
        raise _rules_not_written(unsynced)
    return Response(status_code=204)


@router.post("/tenants/{tenant_id}/keys", status_code=201, dependencies=admin)
def add_key(tenant_id: str, rt: Runtime, body: KeyCreate | None = None) -> TenantWithKey:
    """Rotation, step one: a second key; both work until the old one is revoked."""
    with _answers():
        tenant, key = rt.tenants.add_key(tenant_id, body.expires_at if body else None)
    return _with_key(tenant, key)


@router.delete("/tenants/{tenant_id}/keys/{key_id}", status_code=204, dependencies=admin)
def revoke_key(tenant_id: str, key_id: str, rt: Runtime) -> Response:
    with _answers():
        rt.tenants.revoke_key(tenant_id, key_id)
    return Response(status_code=204)
