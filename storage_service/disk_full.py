"""A full disk under the data dir, told to the client as such: 507 Insufficient Storage with a
message and ``Retry-After``, not a 500 that reads as a bug in the service.

The local store stages each write under a hidden name and renames it only when complete, so a
write cut short by ENOSPC leaves nothing behind and is not acknowledged; the client retries
once space is freed, and nothing needs restarting (the service never caches the failure).
SQLite's own word for it (``database or disk is full``) counts too: the index and the outbox
live under the data dir as well (an object stored whose event the outbox could not take is not
acknowledged either; the reconcile sweep re-emits its event).
"""

from __future__ import annotations

import errno
import sqlite3

from fastapi import Request
from fastapi.responses import JSONResponse

STATUS = 507
RETRY_AFTER_SECONDS = 5
_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in _ERRNOS
    return isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc)


async def disk_full_response(request: Request, exc: Exception) -> JSONResponse:
    """The app's handler for ``OSError`` and ``sqlite3.OperationalError``: a full disk is a
    507; anything else is re-raised to the server's 500 as before."""
    if not is_disk_full(exc):
        raise exc
    return JSONResponse(
        {
            "detail": "no space left on the storage disk; the write was not acknowledged. "
            "Free space under the data dir and retry."
        },
        status_code=STATUS,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
