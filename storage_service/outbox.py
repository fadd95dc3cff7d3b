"""Durable outbox: an event is on disk before anyone is told, and leaves only once JetStream acks.

With NATS down, writes still succeed and events pile up here; the publisher drains them when
NATS returns. A crash between publish and delete republishes with the same ``Nats-Msg-Id``,
which JetStream drops inside its duplicate window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path

from lakehouse.failpoints import failpoint
from lakehouse.settings import Settings
from storage_service.events import BucketEvent
from storage_service.statedb import StateFileCorrupt, open_state_db
from storage_service.stream import connect, ensure_stream, subject_for

log = logging.getLogger(__name__)


class Outbox:
    published = duplicates = failures = stream_seq = 0  # the publisher's counts, for /metrics
    # Why the publisher cannot reach JetStream right now (None: connected, or not tried yet),
    # for the page's summary bar.
    nats_error: str | None = None

    def __init__(self, path: Path) -> None:
        try:
            self._db = open_state_db(path)
        except StateFileCorrupt as exc:
            # It may hold events JetStream never took: refuse, never start on an empty one.
            raise StateFileCorrupt(
                path,
                f"{exc.detail}. It may hold bucket events not yet in JetStream, so the storage "
                "service will not start on it. Move it aside (keep it for inspection), start "
                "the service again, then run `lakewire reconcile --grace 0`: it re-emits an "
                "event for every landed object no table has ingested.",
            ) from exc
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " msg_id TEXT UNIQUE NOT NULL, subject TEXT NOT NULL, payload BLOB NOT NULL)"
        )
        self._lock = threading.Lock()
        self.wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.wakeup = asyncio.Event()

    def add(self, settings: Settings, events: list[BucketEvent]) -> None:
        rows = [(e.msg_id, subject_for(settings, e.bucket), e.to_message()) for e in events]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR IGNORE INTO outbox (msg_id, subject, payload) VALUES (?, ?, ?)", rows
            )
            self._db.execute("COMMIT")
        if self._loop is not None and self.wakeup is not None:
            self._loop.call_soon_threadsafe(self.wakeup.set)

    def pending(self, limit: int = 500) -> list[tuple[int, str, str, bytes]]:
        with self._lock:
            return self._db.execute(
                "SELECT id, msg_id, subject, payload FROM outbox ORDER BY id LIMIT ?", (limit,)
            ).fetchall()

    def done(self, ids: list[int]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


async def run_publisher(settings: Settings, outbox: Outbox, stop: asyncio.Event) -> None:
    """Drain the outbox to JetStream forever, reconnecting with backoff while NATS is away."""
    assert outbox.wakeup is not None
    backoff = 0.2
    while not stop.is_set():
        try:
            async with connect(settings) as nc:
                await ensure_stream(nc, settings)
                js = nc.jetstream()
                backoff = 0.2
                outbox.nats_error = None
                log.info("publisher connected to %s", settings.effective_nats_url)
                while not stop.is_set():
                    rows = outbox.pending()
                    if not rows:
                        outbox.wakeup.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(outbox.wakeup.wait(), timeout=1.0)
                        if nc.is_closed:
                            break
                        continue
                    acks = await asyncio.gather(
                        *(
                            js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
                            for _, msg_id, subject, payload in rows
                        )
                    )
                    outbox.stream_seq = max(ack.seq for ack in acks)
                    failpoint("outbox.after_publish")  # acked by JetStream, still in the outbox
                    outbox.done([row[0] for row in rows])
                    outbox.published += len(rows)
                    outbox.duplicates += sum(1 for ack in acks if ack.duplicate)
        except Exception as exc:  # NATS down, stream gone, timeouts: keep the events and retry.
            outbox.failures += 1
            outbox.nats_error = (
                f"NATS unreachable at {settings.effective_nats_url}: {exc or type(exc).__name__}"
            )
            log.warning("publisher: %s; %d events kept in the outbox", exc, outbox.count())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)
            backoff = min(backoff * 2, 2.0)
