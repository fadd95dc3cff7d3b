"""Bucket lifecycle rules (issue 12): ``GET|PUT|DELETE /api/buckets/{name}/lifecycle``.

The body is the S3 lifecycle configuration JSON (``{"Rules": [...]}``) that AWS and
``mc ilm rule import`` accept. Invalid rules are a 422 whose detail names the rule and field of
each problem; rules on the lake bucket (table locations), the system bucket or a tier bucket are
refused with 422: tables age through table maintenance. ``GET .../lifecycle/plan?at=`` shows what
would happen at a time (now by default) and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response

from lakehouse.lifecycle import (
    LifecycleError,
    RulesStore,
    abort_upload,
    enforcement,
    incomplete_uploads,
    parse_config,
    plan,
    refused_bucket,
    write_native,
)
from storage_service.access import Runtime, require_key

router = APIRouter(prefix="/api", dependencies=[Depends(require_key)])


def _bucket(rt: Runtime, name: str) -> None:
    if not rt.store.bucket_exists(name):
        raise HTTPException(404, detail=f"bucket '{name}' does not exist")


@router.get("/buckets/{name}/lifecycle")
def get_lifecycle(name: str, rt: Runtime) -> dict[str, Any]:
    _bucket(rt, name)
    config = RulesStore(rt.store).get(name)
    if config is None:
        raise HTTPException(404, detail=f"bucket '{name}' has no lifecycle configuration")
    return config.to_json()


@router.put("/buckets/{name}/lifecycle")
def put_lifecycle(name: str, rt: Runtime, body: Any = Body(...)) -> dict[str, Any]:
    _bucket(rt, name)
    why = refused_bucket(rt.settings, name)
    if why is not None:
        raise HTTPException(422, detail=f"lifecycle rules are refused on {why}")
    try:
        config = parse_config(body, tiers=rt.settings.lifecycle_tiers)
    except LifecycleError as exc:
        raise HTTPException(422, detail=exc.issues) from exc
    RulesStore(rt.store).put(name, config)
    _native(rt, name, config)
    return config.to_json()


def _native(rt: Runtime, name: str, config: Any) -> None:
    """S3 backend: what the store can enforce goes into its own lifecycle configuration."""
    try:
        write_native(rt.store, name, config)
    except Exception as exc:
        raise HTTPException(
            502, detail=f"rules saved; the store refused its lifecycle configuration: {exc}"
        ) from exc


@router.delete("/buckets/{name}/lifecycle", status_code=204)
def delete_lifecycle(name: str, rt: Runtime) -> Response:
    _bucket(rt, name)
    RulesStore(rt.store).delete(name)
    _native(rt, name, None)
    return Response(status_code=204)


@router.get("/buckets/{name}/lifecycle/enforcement")
def get_enforcement(name: str, rt: Runtime) -> list[dict[str, Any]]:
    """Per rule: the actions the store enforces natively and those Lakewire runs."""
    _bucket(rt, name)
    config = RulesStore(rt.store).get(name)
    if config is None:
        raise HTTPException(404, detail=f"bucket '{name}' has no lifecycle configuration")
    return enforcement(config, rt.settings.storage_backend)


@router.get("/buckets/{name}/uploads")
def list_uploads(name: str, rt: Runtime, prefix: str = "") -> list[dict[str, str]]:
    """Incomplete multipart uploads (S3 backend; the local backend keeps none)."""
    _bucket(rt, name)
    return [u.as_dict() for u in incomplete_uploads(rt.store, name, prefix)]


@router.delete("/buckets/{name}/uploads", status_code=204)
def abort_incomplete_upload(
    name: str, rt: Runtime, key: str = Query(...), upload_id: str = Query(...)
) -> Response:
    _bucket(rt, name)
    if rt.store.kind != "s3":
        raise HTTPException(404, detail="the local backend keeps no incomplete uploads")
    abort_upload(rt.store, name, key, upload_id)
    return Response(status_code=204)


@router.get("/buckets/{name}/lifecycle/plan")
def plan_lifecycle(
    name: str, rt: Runtime, at: datetime | None = Query(default=None)
) -> list[dict[str, Any]]:
    _bucket(rt, name)
    when = at if at is None or at.tzinfo else at.replace(tzinfo=UTC)
    return [a.as_dict() for a in plan(rt.settings, rt.store, name, at=when)]
