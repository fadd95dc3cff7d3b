"""The audit log: one JSON line per mutating call and per refused call, append-only.

Written by an ASGI middleware, so no route can forget it: it sees every request's method, path
and final status, and reads who made it (and why a refusal was made) from the request state
the authentication and authorisation steps leave there. Paths are recorded without their query
string, so a presigned link's signature never reaches the log. Each record is also a log line
(logger ``lakewire.audit``; refusals at WARNING). The admin also queries the records as the
Delta table ``delta.system.audit``, copied from this file (``lakehouse/audit_table.py``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("lakewire.audit")

MUTATING = {"PUT", "POST", "DELETE", "PATCH"}
REFUSED = {401, 403}


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:  # one write per line on an O_APPEND file: lines never interleave
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        level = logging.WARNING if entry["status"] in REFUSED else logging.INFO
        log.log(
            level,
            "audit %s %s %s -> %s%s",
            entry["principal"],
            entry["method"],
            entry["path"],
            entry["status"],
            f" ({entry['detail']})" if entry.get("detail") else "",
        )

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


class AuditMiddleware:
    def __init__(self, app: ASGIApp, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def watching_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            if scope["method"] in MUTATING or status["code"] in REFUSED:
                state = scope.get("state") or {}
                who = state.get("principal")
                client = scope.get("client")
                self.audit.record(
                    {
                        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                        "principal": getattr(who, "id", None) or "anonymous",
                        "key_id": getattr(who, "key_id", None),
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status["code"],
                        "client": client[0] if client else None,
                        "detail": state.get("denied"),
                    }
                )
