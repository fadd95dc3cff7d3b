"""The JetStream stream that carries bucket events, and how both sides talk to it.

The consumer reads the stream as a log by sequence number (no durable consumer, no acks), so a
Dagster sensor can keep its cursor in Dagster and re-read any range: that is what makes a reset
cursor or a re-run safe to replay.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.js.api import DeliverPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import NotFoundError

from lakehouse.settings import Settings
from storage_service.events import BucketEvent, parse_message

DUPLICATE_WINDOW_SECONDS = 24 * 3600


def stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=settings.stream_name,
        subjects=[f"{settings.subject_prefix}.>"],
        storage=StorageType.FILE,
        # Long enough that an outbox replay after an outage is still de-duplicated.
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
    )


def subject_for(settings: Settings, bucket: str) -> str:
    return f"{settings.subject_prefix}.{bucket}"


@contextlib.asynccontextmanager
async def connect(settings: Settings, timeout: float = 2.0) -> AsyncIterator[Client]:
    """Connect once or raise: callers (outbox publisher, sensor, CLI) own their retry policy.

    nats-py treats ``max_reconnect_attempts=0`` as "no limit" for the initial connect and
    would loop forever while NATS is down; 1 means one retry, then ``NoServersError``. Its
    default error callback prints a traceback per attempt, which the raised error replaces.
    """

    async def _quiet(exc: Exception) -> None:
        return None

    nc = await nats.connect(
        settings.effective_nats_url,
        connect_timeout=timeout,
        allow_reconnect=False,
        max_reconnect_attempts=1,
        reconnect_time_wait=0.2,
        error_cb=_quiet,
    )
    try:
        yield nc
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


async def ensure_stream(nc: Client, settings: Settings) -> None:
    js = nc.jetstream()
    try:
        await js.stream_info(settings.stream_name)
    except NotFoundError:
        await js.add_stream(stream_config(settings))


@dataclass(frozen=True)
class StreamBatch:
    events: list[BucketEvent]
    malformed: list[int]  # stream sequences that were not bucket notifications
    last_seq: int  # highest sequence read (the next cursor)
    stream_last_seq: int  # the stream's tail when we looked
    # When the stream was created: a deleted and recreated stream restarts its sequence at 1,
    # so a sequence means something only together with this ("" when there is no stream).
    stream_created: str = ""


def created_of(info: StreamInfo) -> str:
    """The stream's creation time: what tells one incarnation of it from the next."""
    return info.created.isoformat() if info.created else ""


def format_cursor(seq: int, stream_created: str) -> str:
    """A reader's position: a sequence in one incarnation of the stream."""
    return f"{seq}@{stream_created}" if stream_created else str(seq)


def parse_cursor(cursor: str | None) -> tuple[int, str]:
    """``(sequence, stream created)`` from ``format_cursor``'s text (or a bare sequence)."""
    seq, _, created = (cursor or "0").partition("@")
    return int(seq or 0), created


async def read_after(
    settings: Settings, cursor: int, max_events: int, max_seconds: float
) -> StreamBatch:
    """Read up to ``max_events`` messages with sequence > ``cursor``, bounded in wall time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    async with connect(settings) as nc:
        js = nc.jetstream()
        try:
            info = await js.stream_info(settings.stream_name)
        except NotFoundError:
            return StreamBatch([], [], cursor, 0)
        tail = info.state.last_seq
        first = info.state.first_seq
        created = created_of(info)
        if tail <= cursor:
            return StreamBatch([], [], cursor, tail, created)
        start = max(cursor + 1, first)
        sub = await js.pull_subscribe(
            f"{settings.subject_prefix}.>",
            durable=None,
            stream=settings.stream_name,
            config=_ephemeral_config(start),
        )
        events: list[BucketEvent] = []
        malformed: list[int] = []
        last = cursor
        try:
            while last < tail and len(events) + len(malformed) < max_events:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                want = min(1000, max_events - len(events) - len(malformed), tail - last)
                try:
                    msgs = await sub.fetch(want, timeout=min(remaining, 2.0))
                except nats.errors.TimeoutError:
                    break
                for msg in msgs:
                    seq = msg.metadata.sequence.stream
                    last = max(last, seq)
                    try:
                        events.extend(parse_message(msg.data, stream_seq=seq))
                    except ValueError:
                        malformed.append(seq)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return StreamBatch(events, malformed, last, tail, created)


def _ephemeral_config(start_seq: int):  # type: ignore[no-untyped-def]
    from nats.js.api import AckPolicy, ConsumerConfig

    return ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=start_seq,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=30.0,
    )


def read_after_sync(
    settings: Settings, cursor: int, max_events: int, max_seconds: float
) -> StreamBatch:
    return asyncio.run(read_after(settings, cursor, max_events, max_seconds))


async def publish_events(
    settings: Settings, events: list[BucketEvent], msg_id_suffix: str = ""
) -> None:
    """Publish directly (used by reconciliation and tests); the service goes via the outbox.

    ``msg_id_suffix`` makes a deliberate re-emission (reconciliation, replay) distinct from the
    original event, which JetStream would otherwise drop as a duplicate inside its window.
    """
    async with connect(settings) as nc:
        await ensure_stream(nc, settings)
        js = nc.jetstream()
        for ev in events:
            await js.publish(
                subject_for(settings, ev.bucket),
                ev.to_message(),
                headers={"Nats-Msg-Id": ev.msg_id + msg_id_suffix},
            )
