"""Request dependencies shared by the API routers: the runtime and who is calling.

``require_key`` admits the admin only, so a router that does not check scope is closed to
tenants by default; routers that do check it (through ``storage_service.authz``) take ``Caller``,
which admits the admin and tenants and leaves the principal in the request state for the
audit log.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from storage_service.auth import key_matches
from storage_service.authz import ADMIN, Principal, admin_only
from storage_service.runtime import ServiceRuntime
from storage_service.tenants import BadKey

bearer = HTTPBearer(auto_error=False)


def runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    rt: ServiceRuntime = request.app.state.runtime
    presented = creds.credentials if creds else None
    if presented is None:
        raise _unauthorised("missing or wrong API key")
    if key_matches(rt.api_key, presented):
        who = ADMIN
    else:
        try:
            tenant, key_id = rt.tenants.authenticate(presented)
        except BadKey as exc:
            raise _unauthorised(str(exc)) from None
        who = Principal(tenant.id, tenant, key_id)
    request.state.principal = who
    return who


def require_key(who: Annotated[Principal, Depends(principal)]) -> None:
    """The admin key only (routes, metrics, tenants, and any router that checks no scope)."""
    admin_only(who, "this endpoint")


Runtime = Annotated[ServiceRuntime, Depends(runtime)]
Caller = Annotated[Principal, Depends(principal)]
