"""Bucket lifecycle rules (issue 12): ``GET|PUT|DELETE /api/buckets/{name}/lifecycle``.

The body is the S3 lifecycle configuration JSON (``{"Rules": [...]}``) that AWS and
``mc ilm rule import`` accept. Invalid rules are a 422 whose detail names the rule and field of
each problem; rules on the lake bucket (table locations), the system bucket or a tier bucket are
refused with 422: tables age through table maintenance. ``GET .../lifecycle/plan?at=`` shows what
would happen at a time (now by default) and changes nothing.

A tenant sees and replaces only the rules under its own prefix (the others stay as they are),
and sees the plan, enforcement and uploads of its own part of the bucket.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response

from lakehouse.lifecycle import (
    LifecycleConfiguration,
    LifecycleError,
    Rule,
    RulesStore,
    abort_upload,
    enforcement,
    incomplete_uploads,
    parse_config,
    plan,
    refused_bucket,
    write_native,
)
from storage_service import authz
from storage_service.access import Caller, Runtime, principal
from storage_service.authz import Principal

router = APIRouter(prefix="/api", dependencies=[Depends(principal)])
# A tenant's change merges into the bucket's rules: read, merge and write as one step.
_rules_lock = threading.Lock()


def _rule_prefix(rule: Rule) -> str:
    if rule.Filter is None:
        return rule.Prefix or ""
    if rule.Filter.And is not None:
        return rule.Filter.And.Prefix or ""
    return rule.Filter.Prefix or ""


def _mine(who: Principal, name: str, config: LifecycleConfiguration) -> list[Rule]:
    return [r for r in config.Rules if authz.owns_rule(who, name, _rule_prefix(r))]


def _others(who: Principal, name: str, config: LifecycleConfiguration | None) -> list[Rule]:
    if config is None or who.is_admin:
        return []
    return [r for r in config.Rules if not authz.owns_rule(who, name, _rule_prefix(r))]


def _bucket(rt: Runtime, name: str, who: Principal) -> None:
    authz.bucket(who, name)
    if not rt.store.bucket_exists(name):
        raise HTTPException(404, detail=f"bucket '{name}' does not exist")


@router.get("/buckets/{name}/lifecycle")
def get_lifecycle(name: str, rt: Runtime, who: Caller) -> dict[str, Any]:
    _bucket(rt, name, who)
    config = RulesStore(rt.store).get(name)
    mine = _mine(who, name, config) if config is not None else []
    if config is None or (not who.is_admin and not mine):
        raise HTTPException(404, detail=f"bucket '{name}' has no lifecycle configuration")
    return LifecycleConfiguration(Rules=mine).to_json()


@router.put("/buckets/{name}/lifecycle")
def put_lifecycle(name: str, rt: Runtime, who: Caller, body: Any = Body(...)) -> dict[str, Any]:
    _bucket(rt, name, who)
    why = refused_bucket(rt.settings, name)
    if why is not None:
        raise HTTPException(422, detail=f"lifecycle rules are refused on {why}")
    config = _parse(rt, body)
    authz.rule_prefixes(who, name, [_rule_prefix(r) for r in config.Rules])
    with _rules_lock:
        rules = RulesStore(rt.store)
        whole = config
        if not who.is_admin:
            merged = [*_others(who, name, rules.get(name)), *config.Rules]
            whole = _parse(rt, LifecycleConfiguration(Rules=merged).to_json())
        rules.put(name, whole)
        _native(rt, name, whole)
    return config.to_json()


def _parse(rt: Runtime, body: Any) -> LifecycleConfiguration:
    try:
        return parse_config(body, tiers=rt.settings.lifecycle_tiers)
    except LifecycleError as exc:
        raise HTTPException(422, detail=exc.issues) from exc


def _native(rt: Runtime, name: str, config: Any) -> None:
    """S3 backend: what the store can enforce goes into its own lifecycle configuration."""
    try:
        write_native(rt.settings, rt.store, name, config)
    except Exception as exc:
        raise HTTPException(
            502, detail=f"rules saved; the store refused its lifecycle configuration: {exc}"
        ) from exc


@router.delete("/buckets/{name}/lifecycle", status_code=204)
def delete_lifecycle(name: str, rt: Runtime, who: Caller) -> Response:
    """A tenant's delete removes its own rules only."""
    _bucket(rt, name, who)
    with _rules_lock:
        rules = RulesStore(rt.store)
        others = _others(who, name, rules.get(name))
        if others:
            rest = LifecycleConfiguration(Rules=others)
            rules.put(name, rest)
            _native(rt, name, rest)
        else:
            rules.delete(name)
            _native(rt, name, None)
    return Response(status_code=204)


@router.get("/buckets/{name}/lifecycle/enforcement")
def get_enforcement(name: str, rt: Runtime, who: Caller) -> list[dict[str, Any]]:
    """Per rule: the actions the store enforces natively and those Lakewire runs."""
    _bucket(rt, name, who)
    config = RulesStore(rt.store).get(name)
    if config is None:
        raise HTTPException(404, detail=f"bucket '{name}' has no lifecycle configuration")
    mine = LifecycleConfiguration(Rules=_mine(who, name, config))
    return enforcement(mine, rt.settings.storage_backend)


@router.get("/buckets/{name}/uploads")
def list_uploads(name: str, rt: Runtime, who: Caller, prefix: str = "") -> list[dict[str, str]]:
    """Incomplete multipart uploads (S3 backend; the local backend keeps none)."""
    _bucket(rt, name, who)
    shown = authz.listing(who, name, prefix, None)
    return [u.as_dict() for u in incomplete_uploads(rt.store, name, shown.prefix)]


@router.delete("/buckets/{name}/uploads", status_code=204)
def abort_incomplete_upload(
    name: str, rt: Runtime, who: Caller, key: str = Query(...), upload_id: str = Query(...)
) -> Response:
    _bucket(rt, name, who)
    authz.obj(who, name, key)
    if rt.store.kind != "s3":
        raise HTTPException(404, detail="the local backend keeps no incomplete uploads")
    abort_upload(rt.store, name, key, upload_id)
    return Response(status_code=204)


@router.get("/buckets/{name}/lifecycle/plan")
def plan_lifecycle(
    name: str, rt: Runtime, who: Caller, at: datetime | None = Query(default=None)
) -> list[dict[str, Any]]:
    _bucket(rt, name, who)
    when = at if at is None or at.tzinfo else at.replace(tzinfo=UTC)
    grant = who.grant_in(name)
    return [
        a.as_dict()
        for a in plan(rt.settings, rt.store, name, at=when)
        if grant is None or grant.covers(name, a.key)
    ]
