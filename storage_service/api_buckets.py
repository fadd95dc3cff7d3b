"""Bucket-level API: summary, list, create, rename, delete, versioning, notification rules.

Buckets themselves are the admin's; a tenant sees the buckets its scope reaches, with counts of
its own part only, and keeps the notification rules under its own prefix.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, Field

from lakehouse.objectstore import BucketInfo, BucketNotFound, Unsupported, validate_key
from lakehouse.routes import SYSTEM_BUCKET, settings_routes
from lakehouse.tenants import tenant_kms_key
from storage_service import authz
from storage_service.access import Caller, Runtime, principal, require_key
from storage_service.authz import Principal
from storage_service.notifications import MINIO_NATS_ARN, BucketNotifications
from storage_service.renames import RenameState

router = APIRouter(prefix="/api", dependencies=[Depends(principal)])
admin = [Depends(require_key)]
# Tenants change their own share of a bucket's rules: read, merge and write as one step.
_rules_lock = threading.Lock()


class BucketCreate(BaseModel):
    name: str


class BucketRename(BaseModel):
    new_name: str


class VersioningChange(BaseModel):
    enabled: bool


SSE_ALGORITHMS = {"SSE-S3": "AES256", "SSE-KMS": "aws:kms", "none": None}


class EncryptionChange(BaseModel):
    algorithm: Literal["SSE-S3", "SSE-KMS", "none"]
    kms_key_id: str | None = Field(default=None, description="SSE-KMS: the key's name or ARN.")
    tenant: str | None = Field(
        default=None, description="SSE-KMS: the tenant's own key (lakewire-tenant-<id>)."
    )


class VersionRestore(BaseModel):
    key: str
    version_id: str = Field(min_length=1)


# -- response shapes (OpenAPI shows them) -------------------------------------------------------
class Summary(BaseModel):
    total_buckets: int
    status: Literal["CONNECTED", "DISCONNECTED"]
    backend: str
    reason: str | None = None  # why DISCONNECTED: the store or NATS, and what they said


class EncryptionView(BaseModel):
    enabled: bool
    algorithm: str | None
    supported: bool


class EncryptionSet(EncryptionView):
    detail: str | None = None


class NotificationSummary(BaseModel):
    enabled: bool | None
    rules: int
    error: str | None = None


class UnroutedView(BaseModel):
    objects: int
    examples: list[str]


class BucketView(BaseModel):
    name: str
    objects: int
    size: int
    last_updated: str | None
    created: str | None
    encryption: EncryptionView
    versioning: str
    notifications: NotificationSummary
    stats_complete: bool = Field(
        description="S3 only: False until the background count has listed this bucket once."
    )
    rename: RenameState | None = None
    routes: list[str] = Field(
        default=[],
        description="The routes that watch this bucket (they turn its objects "
        "into table rows), in the order they are tried.",
    )
    unrouted: UnroutedView | None = Field(
        default=None,
        description="Objects in this watched bucket that no route takes (no table will get "
        "them), as last counted in the background; None for a bucket no route watches.",
    )


class Created(BaseModel):
    name: str


class VersioningView(BaseModel):
    supported: bool
    status: str
    detail: str | None = None


class VersionView(BaseModel):
    version_id: str
    size: int
    last_modified: str
    etag: str
    is_latest: bool
    is_delete_marker: bool


class VersionsView(BaseModel):
    supported: bool
    versions: list[VersionView]
    detail: str | None = None
    status: str | None = None


class Restored(BaseModel):
    supported: bool
    key: str | None = None
    size: int | None = None
    etag: str | None = None
    status: str | None = None
    detail: str | None = None


class NotificationsView(BucketNotifications):
    target: str


def _require_bucket(rt: Runtime, name: str) -> None:
    if not rt.store.bucket_exists(name):
        raise BucketNotFound(f"bucket '{name}' does not exist")


def _not_system(name: str) -> None:
    """The system bucket holds the platform's own state (live routes and their history): it
    is changed through its own endpoints, never deleted, renamed or written as a bucket."""
    if name == SYSTEM_BUCKET:
        raise HTTPException(403, detail=f"'{SYSTEM_BUCKET}' is the platform's system bucket")


def _user_buckets(rt: Runtime, who: Principal) -> list[BucketInfo]:
    """The buckets people work with; the system bucket is listed no more than MinIO lists
    its own ``.minio.sys`` (it is reached through /api/routes). A tenant: those of its scope."""
    return [
        b
        for b in rt.store.list_buckets()
        if b.name != SYSTEM_BUCKET and (who.is_admin or who.grant_in(b.name) is not None)
    ]


def _scoped(rt: Runtime, who: Principal, name: str, view: dict[str, Any]) -> dict[str, Any]:
    """A tenant's view of a shared bucket counts only its prefix, and shows no routes and no
    unrouted objects."""
    grant = who.grant_in(name)
    if grant is None:
        return view
    view["routes"] = []
    view["unrouted"] = None  # its examples are other tenants' keys
    if grant.prefix:
        objects = list(rt.store.iter_objects(name, grant.prefix))
        view["objects"] = len(objects)
        view["size"] = sum(o.size for o in objects)
        latest = max((o.last_modified for o in objects), default=None)
        view["last_updated"] = latest.isoformat() if latest else None
        view["stats_complete"] = True
    return view


@router.get("/summary")
def summary(rt: Runtime, who: Caller) -> Summary:
    """A backend or NATS that cannot be reached is reported as DISCONNECTED with the reason,
    never as an error: writes still succeed while NATS is away (their events wait in the
    outbox), but nothing is ingested until it is back, and the page says so."""
    try:
        buckets = _user_buckets(rt, who)
    except Exception as exc:
        reason = f"storage backend unreachable: {exc or type(exc).__name__}"
        return Summary(total_buckets=0, status="DISCONNECTED", backend=rt.store.kind, reason=reason)
    nats_error = rt.outbox.nats_error
    if nats_error is not None:
        waiting = rt.outbox.count()
        return Summary(
            total_buckets=len(buckets),
            status="DISCONNECTED",
            backend=rt.store.kind,
            reason=f"{nats_error}; {waiting} events waiting in the outbox",
        )
    return Summary(total_buckets=len(buckets), status="CONNECTED", backend=rt.store.kind)


@router.get("/buckets")
def list_buckets(rt: Runtime, who: Caller) -> list[BucketView]:
    try:
        buckets = _user_buckets(rt, who)
    except Exception as exc:
        raise HTTPException(503, detail=f"storage backend unreachable: {exc}") from exc
    watching = _routes_by_bucket(rt)
    out = []
    for b in buckets:
        view = rt.catalog.describe(b.name, b.created)
        view["routes"] = watching.get(b.name, [])
        view["unrouted"] = _unrouted(rt, b.name)
        state = rt.renamer.status(b.name)
        view["rename"] = state if state and rt.renamer.busy(b.name) else None
        out.append(BucketView.model_validate(_scoped(rt, who, b.name, view)))
    return out


@router.get("/buckets/{name}")
def get_bucket(name: str, rt: Runtime, who: Caller) -> BucketView:
    authz.bucket(who, name)
    _require_bucket(rt, name)
    view = rt.catalog.describe(name)
    view["routes"] = _routes_by_bucket(rt).get(name, [])
    view["unrouted"] = _unrouted(rt, name)
    return BucketView.model_validate(_scoped(rt, who, name, view))


def _unrouted(rt: Runtime, bucket: str) -> dict[str, object] | None:
    found = rt.unrouted.get(bucket)
    return {"objects": found.objects, "examples": found.examples} if found else None


def _routes_by_bucket(rt: Runtime) -> dict[str, list[str]]:
    """Route names per bucket from the live routes; a routes problem shows as none watching
    (the routes endpoints report it), never as a failed bucket list."""
    out: dict[str, list[str]] = {}
    try:
        routes = settings_routes(rt.settings)
    except Exception:
        return out
    for route in routes:
        out.setdefault(route.bucket, []).append(route.name)
    return out


@router.post("/buckets", status_code=201, dependencies=admin)
def create_bucket(body: BucketCreate, rt: Runtime) -> Created:
    # Held for the create: a name a rename has reserved (or a delete holds) is not free.
    with rt.gate.alone("being created", body.name):
        rt.store.create_bucket(body.name)
        rt.catalog.created(body.name)
    return Created(name=body.name)


@router.delete("/buckets/{name}", status_code=204, dependencies=admin)
def delete_bucket(
    name: str,
    rt: Runtime,
    confirm: str | None = Query(None, description="must repeat the bucket's name"),
) -> Response:
    _not_system(name)
    if confirm != name:
        raise HTTPException(400, detail="to delete a bucket, pass confirm=<the bucket's name>")
    # Refused (409) while writes into the bucket are in flight or a rename holds it; while the
    # delete runs, new writes are refused, so no acknowledged object outlives its bucket.
    with rt.gate.alone("being deleted", name):
        rt.store.delete_bucket(name)
        rt.catalog.bucket_deleted(name)
    return Response(status_code=204)


@router.post("/buckets/{name}/rename", status_code=202, dependencies=admin)
def rename_bucket(
    name: str,
    body: BucketRename,
    rt: Runtime,
    response: Response,
    wait: bool = Query(False, description="answer only when the rename has finished"),
) -> RenameState:
    """Starts the move and answers at once; progress is at ``GET .../rename``."""
    _not_system(name)
    _not_system(body.new_name)
    state = rt.renamer.start(name, body.new_name)
    if wait:
        final = rt.renamer.wait(name)
        assert final is not None
        if final.phase != "done":
            raise HTTPException(409, detail=final.error or f"rename ended in {final.phase}")
        response.status_code = 200
        return final
    return state


@router.get("/buckets/{name}/rename", dependencies=admin)
def rename_status(name: str, rt: Runtime) -> RenameState:
    state = rt.renamer.status(name)
    if state is None:
        raise HTTPException(404, detail=f"no rename of '{name}' is known")
    return state


# -- default encryption (S3); the local backend answers that it cannot --------------------------
@router.put("/buckets/{name}/encryption", dependencies=admin)
def set_encryption(name: str, body: EncryptionChange, rt: Runtime) -> EncryptionSet:
    """SSE-S3, SSE-KMS (a named key, or a tenant's own key) or none, for new objects."""
    _not_system(name)
    key = body.kms_key_id
    if body.tenant is not None:
        if body.tenant not in {t.id for t in rt.tenants.all()}:
            raise HTTPException(404, detail=f"no tenant '{body.tenant}'")
        key = tenant_kms_key(body.tenant)
    if body.algorithm == "SSE-KMS" and not key:
        raise HTTPException(422, detail="SSE-KMS needs kms_key_id or tenant")
    if body.algorithm != "SSE-KMS" and (body.kms_key_id or body.tenant):
        raise HTTPException(422, detail="kms_key_id and tenant go with SSE-KMS only")
    try:
        done = rt.store.set_encryption(name, SSE_ALGORITHMS[body.algorithm], key)
    except Unsupported as exc:
        return EncryptionSet(enabled=False, algorithm=None, supported=False, detail=str(exc))
    except BucketNotFound:
        raise
    except Exception as exc:
        raise HTTPException(502, detail=f"the store refused the encryption: {exc}") from exc
    rt.catalog.forget(name)
    return EncryptionSet(enabled=done.enabled, algorithm=done.algorithm, supported=True)


# -- versioning (S3); the local backend answers that it cannot ----------------------------------
@router.get("/buckets/{name}/versioning")
def get_versioning(name: str, rt: Runtime, who: Caller) -> VersioningView:
    authz.bucket(who, name)
    _require_bucket(rt, name)
    status = rt.store.versioning(name)
    return VersioningView(supported=status != "Unsupported", status=status)


@router.put("/buckets/{name}/versioning", dependencies=admin)
def set_versioning(name: str, body: VersioningChange, rt: Runtime) -> VersioningView:
    try:
        status = rt.store.set_versioning(name, body.enabled)
    except Unsupported as exc:
        return VersioningView(supported=False, status="Unsupported", detail=str(exc))
    rt.catalog.forget(name)
    return VersioningView(supported=True, status=status)


@router.get("/buckets/{name}/versions")
def list_versions(name: str, rt: Runtime, who: Caller, key: str = Query(...)) -> VersionsView:
    authz.obj(who, name, key)
    try:
        versions = rt.store.list_versions(name, key)
    except Unsupported as exc:
        return VersionsView(supported=False, status="Unsupported", detail=str(exc), versions=[])
    return VersionsView(
        supported=True,
        versions=[
            VersionView(
                version_id=v.version_id,
                size=v.size,
                last_modified=v.last_modified.isoformat(),
                etag=v.etag,
                is_latest=v.is_latest,
                is_delete_marker=v.is_delete_marker,
            )
            for v in versions
        ],
    )


@router.post("/buckets/{name}/versions/restore")
def restore_version(name: str, body: VersionRestore, rt: Runtime, who: Caller) -> Restored:
    validate_key(body.key)
    authz.obj(who, name, body.key)
    try:
        with rt.gate.writing(name):
            info = rt.store.restore_version(name, body.key, body.version_id)
    except Unsupported as exc:
        return Restored(supported=False, status="Unsupported", detail=str(exc))
    rt.announce_write(name, body.key, info)
    return Restored(supported=True, key=info.key, size=info.size, etag=info.etag)


# -- notification rules (the model of `mc event add`) -------------------------------------------
def _target(rt: Runtime, name: str) -> str:
    """Where the bucket's events go: the JetStream subject, or the S3 queue ARN."""
    if rt.store.native_events:
        return rt.settings.s3_notification_arn
    return f"nats:{rt.settings.subject_prefix}.{name}"


@router.get("/buckets/{name}/notifications")
def get_notifications(name: str, rt: Runtime, who: Caller) -> NotificationsView:
    """A tenant sees the rules under its own prefix only."""
    authz.bucket(who, name)
    _require_bucket(rt, name)
    config = rt.catalog.notification_config(name)
    mine = [r for r in config.rules if authz.owns_rule(who, name, r.prefix)]
    return NotificationsView(target=_target(rt, name), rules=mine)


@router.put("/buckets/{name}/notifications")
def set_notifications(
    name: str, body: BucketNotifications, rt: Runtime, who: Caller
) -> NotificationsView:
    """The admin replaces all of a bucket's rules; a tenant replaces those under its prefix
    (every rule it sends must lie there) and leaves the others as they are."""
    authz.rule_prefixes(who, name, [r.prefix for r in body.rules])
    _require_bucket(rt, name)
    with _rules_lock:
        if not who.is_admin:
            kept = rt.catalog.notification_config(name).rules
            others = [r for r in kept if not authz.owns_rule(who, name, r.prefix)]
            wanted = BucketNotifications(rules=[*others, *body.rules])
        else:
            wanted = body
        _apply_notifications(rt, name, wanted)
    return NotificationsView(target=_target(rt, name), rules=body.rules)


def _apply_notifications(rt: Runtime, name: str, body: BucketNotifications) -> None:
    try:
        rt.catalog.set_notification_config(name, body)
    except Exception as exc:
        if not rt.store.native_events:
            raise
        hint = (
            " (MinIO's NATS target must be configured on the server: MINIO_NOTIFY_NATS_*)"
            if rt.settings.s3_notification_arn == MINIO_NATS_ARN
            else ""
        )
        raise HTTPException(
            502,
            detail=f"the S3 backend rejected notification rules for target "
            f"{rt.settings.s3_notification_arn}: {exc}{hint}",
        ) from exc
