"""Request ids for the storage service's JSON log lines (the formatter is ``lakehouse.jsonlogs``).

A request's id is the caller's ``X-Request-Id`` when it sends one (so a client's retries and a
proxy's log can be matched) or a new one; it is echoed in the response and carried by every
line logged while the request is handled, as is its object when the path names one. Log
shippers (Loki, Vector, CloudWatch) read these lines without a parsing rule.
"""

from __future__ import annotations

import logging
import time
import uuid
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lakehouse.jsonlogs import configure_json_logging, request_id, request_object

access = logging.getLogger("storage_service.access")
HEADER = b"x-request-id"
OBJECTS_PREFIX = "/api/buckets/"


def configure_service_logging() -> None:
    """The shared JSON lines (``lakehouse/jsonlogs.py``), uvicorn's loggers included."""
    configure_json_logging(quiet=("watchfiles",))  # watchfiles: a line per batch of changes
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def _object_of(path: str) -> str | None:
    """``bucket/key`` of an object path (``/api/buckets/B/objects/K``), else None."""
    if not path.startswith(OBJECTS_PREFIX):
        return None
    bucket, sep, key = path[len(OBJECTS_PREFIX) :].partition("/objects/")
    return f"{unquote(bucket)}/{unquote(key)}" if sep and key else None


class RequestLogMiddleware:
    """Gives each request its id and logs one line when it is answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(HEADER, b"").decode("latin-1")[:128]
        rid = given or uuid.uuid4().hex
        id_token = request_id.set(rid)
        obj_token = request_object.set(_object_of(scope.get("path", "")))
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 1),
                },
            )
            request_object.reset(obj_token)
            request_id.reset(id_token)
