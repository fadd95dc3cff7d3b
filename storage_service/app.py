"""The FastAPI application of the Object Storage service: the API, the page, presigned URLs."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lakehouse.audit_table import audit_path
from lakehouse.objectstore import (
    BucketExists,
    BucketNotFound,
    InvalidName,
    InvalidRange,
    InvalidTags,
    KeyConflict,
    ObjectNotFound,
    StorageError,
)
from lakehouse.settings import Settings
from storage_service import api_buckets, api_lifecycle, api_objects, api_routes, api_sql
from storage_service.access import Runtime, require_key
from storage_service.api_audit import router as audit_router
from storage_service.api_events import router as events_router
from storage_service.api_tenants import router as tenants_router
from storage_service.audit import AuditLog, AuditMiddleware
from storage_service.authz import Denied
from storage_service.disk_full import disk_full_response
from storage_service.gate import BucketBusy
from storage_service.logs import RequestLogMiddleware
from storage_service.metrics import MetricsMiddleware, ServiceMetrics
from storage_service.renames import RenameConflict
from storage_service.runtime import ServiceRuntime
from storage_service.security_headers import CSP, SecurityHeaders

STATIC_DIR = Path(__file__).parent / "static"
PAGES_DIR = Path(__file__).parent / "pages"
SWAGGER_CDN = "https://cdn.jsdelivr.net"
DOCS_CSP = CSP.replace("script-src 'self'", f"script-src 'self' {SWAGGER_CDN}").replace(
    "style-src 'self'", f"style-src 'self' {SWAGGER_CDN}"
)

# The one place where a storage error becomes an HTTP status, so every route answers alike.
ERROR_STATUS: list[tuple[type[Exception], int]] = [
    (InvalidName, 422),
    (InvalidTags, 422),
    (InvalidRange, 416),
    (BucketNotFound, 404),
    (ObjectNotFound, 404),
    (BucketExists, 409),
    (KeyConflict, 409),
    (RenameConflict, 409),
    (BucketBusy, 409),
    (StorageError, 400),
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = ServiceMetrics()  # this app's own registry

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = ServiceRuntime(settings)
        app.state.runtime = rt
        await rt.start()
        metrics.bind(rt)
        try:
            yield
        finally:
            metrics.unbind()
            await rt.stop()

    # FastAPI's own /docs page has an inline script (and /redoc an inline style): our /docs below
    # serves Swagger UI with its set-up in a file, so no page needs 'unsafe-inline'.
    app = FastAPI(
        title="Lakewire Object Storage",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=app.router.routes)
    app.state.audit = AuditLog(audit_path(settings))
    app.add_middleware(AuditMiddleware, audit=app.state.audit)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestLogMiddleware)  # outermost: the id covers the whole request

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> JSONResponse:
        request.state.denied = exc.detail  # the audit record says why
        return JSONResponse({"detail": exc.detail}, status_code=403)

    @app.exception_handler(StorageError)
    async def storage_error(request: Request, exc: StorageError) -> JSONResponse:
        status = next(code for kind, code in ERROR_STATUS if isinstance(exc, kind))
        headers = {}
        if isinstance(exc, InvalidRange):  # RFC 9110: a 416 names the object's length
            headers["Content-Range"] = f"bytes */{exc.size}"
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    app.add_exception_handler(OSError, disk_full_response)
    app.add_exception_handler(sqlite3.OperationalError, disk_full_response)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(rt: Runtime) -> dict[str, object]:
        return {"ok": True, "outbox": rt.outbox.count()}

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(require_key)])
    def prometheus_metrics() -> Response:  # Prometheus text; `Authorization: Bearer <key>`
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        # The page holds no secret: it asks the user for the API key.
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> FileResponse:
        # Swagger UI's files come from its CDN, as with FastAPI's default page: only this
        # answer's policy names that origin (so the page lives outside static/).
        return FileResponse(
            PAGES_DIR / "api-docs.html", headers={"Content-Security-Policy": DOCS_CSP}
        )

    app.include_router(api_buckets.router)
    app.include_router(api_objects.router)
    app.include_router(api_objects.presigned_router)
    app.include_router(events_router)
    app.include_router(api_routes.router)
    app.include_router(api_sql.router)
    app.include_router(api_lifecycle.router)
    app.include_router(tenants_router)
    app.include_router(audit_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
