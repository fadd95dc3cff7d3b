"""Routes API: read, change, explain and roll back the live routes (docs/routes.md).

The live routes are versioned documents in the system bucket (``lakehouse.routes_store``); a
``PUT`` is validated by the same analysis as ``lakewire routes check`` and answers 422 with the
route and field of each problem. The Dagster sensor and runs read the newest version on every
tick, so the next event after a change takes the new routes, with no restart. On the service's
first start the routes file is seeded as version 1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from pydantic import BaseModel, Field

from lakehouse.routes import RoutesError, explain_key
from lakehouse.routes_store import RoutesConflict, RoutesStore, history_with_diffs, live
from storage_service.access import Runtime, require_key

log = logging.getLogger(__name__)


@asynccontextmanager
async def _seed_on_start(app: FastAPI) -> AsyncIterator[None]:
    rt = getattr(app.state, "runtime", None)
    if rt is not None:
        try:
            seeded = await asyncio.to_thread(RoutesStore(rt.settings, rt.store).seed)
            if seeded is not None:
                log.info("routes seeded into the system bucket from %s", seeded.author)
        except Exception as exc:  # an unreachable store: readers fall back to the routes file
            log.warning("could not seed the live routes: %s", exc)
    yield


router = APIRouter(
    prefix="/api/routes",
    tags=["routes"],
    dependencies=[Depends(require_key)],
    lifespan=_seed_on_start,
)


class RouteRow(BaseModel):
    order: int = Field(description="1 = tried first.")
    name: str
    bucket: str
    glob: str
    priority: int
    table: str
    format: str
    file_format: str
    mode: str
    definition: dict[str, Any]


class IssueView(BaseModel):
    route: str | None
    field: str | None
    message: str
    example: str | None = None


class RoutesView(BaseModel):
    version: int | None = Field(description="Live version in the system bucket; null: the file.")
    source: str
    author: str | None
    at: str | None
    yaml: str
    routes: list[RouteRow]
    warnings: list[IssueView]


class VersionView(BaseModel):
    version: int
    author: str
    at: str
    comment: str
    source: str
    diff: str


class Rollback(BaseModel):
    version: int = Field(ge=1)
    comment: str = ""


class Explanation(BaseModel):
    bucket: str
    key: str
    route: str | None
    table: str | None
    file_format: str | None
    definition: dict[str, Any] | None
    also_matched: list[str]
    note: str | None = None


def _view(rt: Any) -> RoutesView:
    current = live(rt.settings, rt.store)
    v = current.version
    return RoutesView(
        version=v.version if v else None,
        source=current.source,
        author=v.author if v else None,
        at=v.at if v else None,
        yaml=current.routes.text,
        routes=[
            RouteRow(
                order=n,
                name=r.name,
                bucket=r.bucket,
                glob=r.glob,
                priority=r.priority,
                table=f"{r.format}.{r.table}",
                format=r.format,
                file_format=r.file_format,
                mode=r.mode,
                definition=r.summary(),
            )
            for n, r in enumerate(current.routes.routes, 1)
        ],
        warnings=[
            IssueView(route=w.route, field=w.field, message=w.message, example=w.example)
            for w in current.routes.warnings
        ],
    )


def _unprocessable(exc: RoutesError) -> HTTPException:
    return HTTPException(status_code=422, detail=[i.as_dict() for i in exc.issues])


@router.get("", response_model=RoutesView)
def get_routes(rt: Runtime) -> RoutesView:
    """The live routes in the order they are tried, their YAML, version and warnings."""
    try:
        return _view(rt)
    except RoutesError as exc:
        raise _unprocessable(exc) from None


@router.put(
    "",
    response_model=RoutesView,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/yaml": {"schema": {"type": "string"}}},
            "description": "A routes document (YAML, or the same shape as JSON).",
        }
    },
    responses={409: {"description": "If-Match names a version that is no longer live."}},
)
async def put_routes(
    request: Request,
    rt: Runtime,
    comment: str = Query("", description="Why; kept in the history."),
    if_match: str | None = Header(None, description="The version this change is based on."),
) -> RoutesView:
    """Replace the live routes with a new version (validated first; 422 names route and field)."""
    text = (await request.body()).decode("utf-8", errors="replace")
    expected = None
    if if_match is not None:
        try:
            expected = int(if_match.strip().strip('"'))
        except ValueError:
            raise HTTPException(422, "If-Match must be a routes version number") from None
    who = f"api (admin key) from {request.client.host if request.client else 'unknown'}"
    store = RoutesStore(rt.settings, rt.store)
    try:
        await asyncio.to_thread(store.save, text, who, "api", comment, expected)
    except RoutesConflict as exc:
        raise HTTPException(409, str(exc)) from None
    except RoutesError as exc:
        raise _unprocessable(exc) from None
    return await asyncio.to_thread(_view, rt)


@router.get("/history", response_model=list[VersionView])
def routes_history(rt: Runtime) -> list[VersionView]:
    """Every version: who, when, why, and the diff from the one before."""
    return [
        VersionView(
            version=v.version,
            author=v.author,
            at=v.at,
            comment=v.comment,
            source=v.source,
            diff=d,
        )
        for v, d in history_with_diffs(RoutesStore(rt.settings, rt.store))
    ]


@router.post("/rollback", response_model=RoutesView)
def rollback_routes(body: Rollback, request: Request, rt: Runtime) -> RoutesView:
    """Make an old version's routes live again (as a new version; nothing is lost)."""
    who = f"api (admin key) from {request.client.host if request.client else 'unknown'}"
    try:
        RoutesStore(rt.settings, rt.store).rollback(body.version, who, body.comment)
    except RoutesError as exc:
        raise HTTPException(404 if "no routes version" in str(exc) else 422, str(exc)) from None
    return _view(rt)


@router.get("/explain", response_model=Explanation)
def explain_route(
    rt: Runtime, bucket: str = Query(...), key: str = Query(..., min_length=1)
) -> Explanation:
    """Which route an object in BUCKET at KEY takes, and which other routes also match."""
    e = explain_key(live(rt.settings, rt.store).routes.routes, bucket, key, rt.settings)
    return Explanation(
        bucket=e.bucket,
        key=e.key,
        route=e.route.name if e.route else None,
        table=e.table,
        file_format=e.file_format,
        definition=e.route.summary() if e.route else None,
        also_matched=e.also_matched,
        note=e.note,
    )
