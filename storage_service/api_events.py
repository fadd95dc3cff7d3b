"""``POST /api/events/s3``: bucket notifications from any S3 store, into the same outbox.

MinIO's and RustFS's webhook targets and Ceph RGW's HTTP push send S3-format event JSON: MinIO
its ``{"EventName", "Key", "Records"}`` body (the one its NATS target publishes), the others
plain ``{"Records": [...]}``. Each record goes through the parser the consumer uses and into the
durable outbox, so it reaches JetStream exactly as the service's own events do: on disk first,
published with ``Nats-Msg-Id`` = bucket/key/sequencer/event, so a store that retries a delivery
(or sends through two targets) produces one stream message.

Authentication is a token of its own, not the admin API key, because it is configured into the
store: ``LAKEWIRE_WEBHOOK_TOKEN`` (on the platform the ``lakewire_webhook_token`` file in the
service's secrets folder), else one generated on first start and kept next to the API key with
mode 0600. MinIO sends it as ``Authorization: Bearer <token>``; a bare token is accepted too.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from lakehouse.settings import Settings
from storage_service.access import Runtime
from storage_service.auth import key_matches
from storage_service.events import parse_message, with_identity

MAX_BODY_BYTES = 16 * 1024**2
MIN_TOKEN_CHARS = 24

router = APIRouter(prefix="/api/events", tags=["events"])


def token_file(settings: Settings) -> Path:
    return settings.state_dir / "webhook_token"


def load_or_create_webhook_token(settings: Settings) -> str:
    configured = settings.webhook_token
    if configured is not None:
        token = configured.get_secret_value().strip()
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"LAKEWIRE_WEBHOOK_TOKEN must be at least {MIN_TOKEN_CHARS} characters"
            )
        return token
    path = token_file(settings)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker created it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def _token(request: Request, settings: Settings) -> str:
    token: str | None = getattr(request.app.state, "webhook_token", None)
    if token is None:
        token = load_or_create_webhook_token(settings)
        request.app.state.webhook_token = token
    return token


def _presented(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, rest = authorization.strip().partition(" ")
    return rest.strip() if rest and scheme.lower() == "bearer" else authorization.strip()


class Accepted(BaseModel):
    accepted: int


@router.post("/s3", response_model=Accepted)
async def s3_events(
    request: Request,
    rt: Runtime,
    authorization: Annotated[str | None, Header()] = None,
) -> Accepted:
    """Take an S3/MinIO event notification body; 200 once its records are in the outbox."""
    if not key_matches(_token(request, rt.settings), _presented(authorization)):
        raise HTTPException(
            status_code=401,
            detail="missing or wrong webhook token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(status_code=413, detail="event body too large")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=f"not JSON: {exc}") from exc
    if isinstance(doc, dict) and "Records" not in doc:
        # AWS's s3:TestEvent and empty deliveries carry no records: nothing to do.
        return Accepted(accepted=0)
    try:
        events = [with_identity(e) for e in parse_message(body)]
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    if events:
        await run_in_threadpool(rt.outbox.add, rt.settings, events)  # fsync: off the loop
    return Accepted(accepted=len(events))


@router.head("/s3", include_in_schema=False)
async def s3_events_probe() -> None:
    """Stores probe their webhook target with HEAD before sending; nothing to reveal."""
    return None
