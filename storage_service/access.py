"""Request dependencies shared by the API routers: the runtime and the API key check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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
