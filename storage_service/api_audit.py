"""``GET /api/audit`` (admin only): the newest audit records, newest first, for the page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from storage_service.access import require_key
from storage_service.audit import AuditLog

router = APIRouter(prefix="/api", tags=["audit"], dependencies=[Depends(require_key)])


@router.get("/audit")
def audit_records(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    principal: str | None = Query(None, description="Only this principal's records."),
) -> list[dict[str, Any]]:
    log: AuditLog = request.app.state.audit
    records = log.read()
    if principal is not None:
        records = [r for r in records if r.get("principal") == principal]
    return records[::-1][:limit]
