"""Which stream events a table's run takes, in which commits.

One grouping for both sides of the drain: the sensor uses it to see which tables have new
work, and the run uses it on everything pending in the stream for its table when it starts, so
a run always takes the whole backlog (in commits capped in objects and bytes) and a trickle of
files can never queue more than one run per table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from lakehouse.routes import Route, route_for
from lakehouse.settings import Settings
from storage_service.events import BucketEvent
from storage_service.stream import read_after_sync

Action = Literal["create", "remove"]
# Set on a run when its drain has committed: the stream sequence it drained up to, and which
# incarnation of the stream that sequence is in (its creation time).
DRAINED_TAG = "lakewire/drained_to"
# Set when a drain has read its tail, before it ingests: the stream sequence it will drain to.
DRAINING_TAG = "lakewire/draining_to"
# Set on every drain run when it is requested: the stream sequences of the events it was for.
STREAM_SEQ_TAG = "lakewire/stream_seq"
DRAINED_STREAM_TAG = "lakewire/drained_stream"
# Set on a run when it is requested: the incarnation of the stream its sequences are in.
STREAM_TAG = "lakewire/stream"
Item = tuple[Action, BucketEvent]


def pending_by_table(
    settings: Settings, routes: list[Route], events: list[BucketEvent]
) -> dict[tuple[str, str], list[Item]]:
    """Events grouped by (route name, table), in stream order, newest version per key.

    Created events become rows; ``ObjectRemoved`` events matter only to routes whose
    ``on_delete`` is ``delete_rows``; lifecycle deletes and transitions are not routed at all.
    """
    latest: dict[tuple[str, str], tuple[Route, BucketEvent]] = {}
    removals: dict[tuple[str, str], tuple[Route, BucketEvent]] = {}
    for ev in events:
        if ev.is_lifecycle:  # expiry / transition: the object aged, nobody wrote or deleted it
            continue
        route = route_for(routes, ev.bucket, ev.key, settings)
        if route is None:
            continue
        if ev.is_created:
            latest[(ev.bucket, ev.key)] = (route, ev)  # only the newest version matters
            removals.pop((ev.bucket, ev.key), None)
        elif ev.is_removed and route.on_delete == "delete_rows":
            removals[(ev.bucket, ev.key)] = (route, ev)
            latest.pop((ev.bucket, ev.key), None)  # removed after it was written
    by_table: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for action, chosen in (("remove", removals), ("create", latest)):
        for route, ev in chosen.values():
            item: Item = ("remove" if action == "remove" else "create", ev)
            by_table[(route.name, route.table_for(ev.key).qualified)].append(item)
    for items in by_table.values():
        items.sort(key=lambda item: item[1].stream_seq or 0)
    return dict(by_table)


def unrouted(settings: Settings, routes: list[Route], events: list[BucketEvent]) -> list[str]:
    """``bucket/key`` of written objects no route takes (quarantine copies excepted): no table
    gets them, which the sensor says in its log so nobody waits for a table in silence."""
    return [
        f"{ev.bucket}/{ev.key}"
        for ev in events
        if ev.is_created
        and not ev.is_lifecycle
        and not ev.key.startswith(settings.quarantine_prefix)
        and route_for(routes, ev.bucket, ev.key, settings) is None
    ]


def commits(settings: Settings, items: list[Item]) -> list[list[Item]]:
    """Split a table's pending items into commits capped in objects and bytes."""
    out: list[list[Item]] = []
    batch: list[Item] = []
    size = 0
    for item in items:
        if batch and (
            len(batch) >= settings.batch_max_objects
            or size + item[1].size > settings.batch_max_bytes
        ):
            out.append(batch)
            batch, size = [], 0
        batch.append(item)
        size += item[1].size
    if batch:
        out.append(batch)
    return out


@dataclass
class Backlog:
    items: list[Item]
    first_seq: int
    last_seq: int
    stream_created: str = ""


def stream_backlog(
    settings: Settings, routes: list[Route], route_name: str, table: str, from_seq: int
) -> Backlog:
    """Everything in the stream for one table from ``from_seq`` up to the tail as it is now.

    The tail is read once, at the start: events that arrive later belong to the next run,
    which the sensor requests because this one is no longer queued.
    """
    cursor = max(from_seq - 1, 0)
    events: list[BucketEvent] = []
    tail: int | None = None
    created = ""
    while True:
        batch = read_after_sync(
            settings, cursor, settings.sensor_max_events, settings.sensor_max_seconds
        )
        if tail is None:
            tail, created = batch.stream_last_seq, batch.stream_created
            if cursor > tail:  # the stream was recreated after this run was requested
                from_seq = cursor = 0
                continue
        events.extend(e for e in batch.events if (e.stream_seq or 0) <= tail)
        if batch.last_seq <= cursor or batch.last_seq >= tail:
            break
        cursor = batch.last_seq
    pending = pending_by_table(settings, routes, events).get((route_name, table), [])
    return Backlog(pending, from_seq, tail or cursor, created)
