"""The FastAPI application of the Object Storage service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from lakehouse.objectstore import BucketExists, InvalidName
from lakehouse.settings import Settings
from storage_service.auth import key_matches
from storage_service.runtime import ServiceRuntime

bearer = HTTPBearer(auto_error=False)


def runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


def require_key(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    rt: ServiceRuntime = request.app.state.runtime
    if not key_matches(rt.api_key, creds.credentials if creds else None):
        raise HTTPException(
            status_code=401,
            detail="missing or wrong API key",
            headers={"WWW-Authenticate": "Bearer"},
        )


Runtime = Annotated[ServiceRuntime, Depends(runtime)]


class BucketCreate(BaseModel):
    name: str


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = ServiceRuntime(settings)
        app.state.runtime = rt
        await rt.start()
        try:
            yield
        finally:
            await rt.stop()

    app = FastAPI(title="Lakewire Object Storage", version="0.1.0", lifespan=lifespan)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(rt: Runtime) -> dict[str, object]:
        return {"ok": True, "outbox": rt.outbox.count()}

    @app.get("/api/summary", dependencies=[Depends(require_key)])
    async def summary(rt: Runtime) -> dict[str, object]:
        try:
            buckets = rt.store.list_buckets()
            return {"total_buckets": len(buckets), "status": "CONNECTED"}
        except Exception:
            return {"total_buckets": 0, "status": "DISCONNECTED"}

    @app.get("/api/buckets", dependencies=[Depends(require_key)])
    async def list_buckets(rt: Runtime) -> list[dict[str, object]]:
        out = []
        for b in rt.store.list_buckets():
            st = rt.index.stats(b.name)
            out.append({"name": b.name, "objects": st.objects, "size": st.size})
        return out

    @app.post("/api/buckets", status_code=201, dependencies=[Depends(require_key)])
    async def create_bucket(body: BucketCreate, rt: Runtime) -> dict[str, str]:
        try:
            rt.store.create_bucket(body.name)
        except InvalidName as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        except BucketExists as exc:
            raise HTTPException(409, detail=str(exc)) from exc
        return {"name": body.name}

    return app
