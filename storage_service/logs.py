"""Structured logs of the storage service: one JSON object per line, each request with an id.

A request's id is the caller's ``X-Request-Id`` when it sends one (so a client's retries and a
proxy's log can be matched) or a new one; it is echoed in the response and carried by every
line logged while the request is handled, as is its object when the path names one. Log
shippers (Loki, Vector, CloudWatch) read these lines without a parsing rule.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
request_object: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_object", default=None
)
access = logging.getLogger("storage_service.access")
HEADER = b"x-request-id"
OBJECTS_PREFIX = "/api/buckets/"
# Attributes every LogRecord has; anything else was passed as ``extra=`` and is logged too.
# uvicorn's ``color_message`` is the same text with terminal colours.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, var in (("request_id", request_id), ("object", request_object)):
            value = var.get()
            if value is not None:
                line[name] = value
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_json_logging(level: int = logging.INFO) -> None:
    """Every logger of the process (uvicorn's too) writes JSON lines to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warning is a log line too, not raw stderr
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # a line per batch of changes


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
