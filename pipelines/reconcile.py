"""Reconciliation and replay: re-emit bucket events so the normal event path does the work.

Stores drop notifications (MinIO does under load or restart); the sweep lists each route's
landing prefix, finds objects the target table's ledger has never seen and that are older than
a grace period (younger ones may still have their event in flight), and publishes an event for
each. Replay does the same for chosen or quarantined objects after a fix. Both publish with a
distinct ``Nats-Msg-Id`` suffix, so JetStream does not drop them as duplicates of the original,
and the sensor, run keys and ledger keep the result exactly-once.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lakehouse.objectstore import ObjectInfo, ObjectNotFound, ObjectStore
from lakehouse.quarantine import (
    find_quarantined,
    is_quarantine_key,
    list_quarantined,
    quarantine_key,
    release,
)
from lakehouse.routes import Route, route_for, settings_routes
from lakehouse.settings import Settings
from lakehouse.tables import SourceVersion, TableRef, open_target, pending_sources
from storage_service.events import OBJECT_CREATED_PUT, BucketEvent, sequencer_for
from storage_service.stream import publish_events

Store = ObjectStore


class EventsUnavailable(RuntimeError):
    """NATS could not take the re-emitted events; nothing was lost, the sweep can be re-run."""


def _publish(settings: Settings, events: list[BucketEvent], suffix: str) -> None:
    try:
        asyncio.run(publish_events(settings, events, suffix))
    except Exception as exc:  # nats-py raises its own error types, OSError and timeouts
        detail = str(exc) or type(exc).__name__
        raise EventsUnavailable(
            f"cannot publish events to NATS at {settings.effective_nats_url}: {detail}"
        ) from exc


@dataclass
class ReconcileResult:
    listed: int = 0
    quarantined: int = 0
    missing: list[BucketEvent] = field(default_factory=list)


def object_event(store: Store, bucket: str, info: ObjectInfo, agent: str) -> BucketEvent:
    """The created event a store would have sent for this object as it is now."""
    etag = info.etag  # the store's etag: content MD5 on both backends
    ns = int(info.last_modified.timestamp() * 1_000_000) * 1000
    return BucketEvent(
        event_name=OBJECT_CREATED_PUT,
        bucket=bucket,
        key=info.key,
        size=info.size,
        etag=etag,
        sequencer=sequencer_for(ns),
        event_time=datetime.now(tz=UTC),
        user_agent=agent,
    )


def current_source(store: Store, bucket: str, key: str) -> SourceVersion:
    """The object's current version as an event would name it (for in-process callers)."""
    ev = object_event(store, bucket, store.head(bucket, key), "lakewire")
    return SourceVersion(bucket, key, ev.etag, ev.sequencer)


def _prefixes(routes: list[Route]) -> dict[str, set[str]]:
    """The literal prefix of each route's glob, per bucket, without nested duplicates."""
    out: dict[str, set[str]] = defaultdict(set)
    for r in routes:
        out[r.bucket].add(r.literal_prefix)
    return {
        b: {p for p in ps if not any(o != p and p.startswith(o) for o in ps)}
        for b, ps in out.items()
    }


def find_unledgered(
    settings: Settings,
    store: Store,
    routes: list[Route],
    grace_seconds: float,
    now: datetime | None = None,
) -> ReconcileResult:
    result = ReconcileResult()
    cutoff = (now or datetime.now(tz=UTC)) - timedelta(seconds=grace_seconds)
    by_table: dict[TableRef, list[tuple[SourceVersion, BucketEvent]]] = defaultdict(list)
    for bucket, prefixes in _prefixes(routes).items():
        if not store.bucket_exists(bucket):
            continue
        quarantined = {(r.key, r.etag) for r in list_quarantined(settings, store, bucket)}
        for prefix in sorted(prefixes):
            for info in store.iter_objects(bucket, prefix):
                if is_quarantine_key(settings, info.key):
                    continue
                route = route_for(routes, bucket, info.key, settings)
                if route is None or info.last_modified > cutoff:
                    continue
                result.listed += 1
                ev = object_event(store, bucket, info, "lakewire-reconcile")
                if (ev.key, ev.etag) in quarantined:
                    result.quarantined += 1
                    continue
                src = SourceVersion(bucket, ev.key, ev.etag, ev.sequencer)
                by_table[route.table_for(ev.key)].append((src, ev))
    for ref, items in by_table.items():
        pending = set(pending_sources(open_target(settings, store, ref), [s for s, _ in items]))
        result.missing.extend(ev for s, ev in items if s in pending)
    return result


def reconcile(
    settings: Settings,
    store: Store,
    *,
    grace_seconds: float | None = None,
    dry_run: bool = False,
) -> ReconcileResult:
    """Find objects that never became rows and re-emit their events (unless ``dry_run``)."""
    routes = settings_routes(settings)
    grace = settings.reconcile_grace_seconds if grace_seconds is None else grace_seconds
    result = find_unledgered(settings, store, routes, grace)
    if result.missing and not dry_run:
        _publish(settings, result.missing, f"/reconcile/{uuid.uuid4().hex}")
    return result


class ReplayError(LookupError):
    pass


def replay_object(settings: Settings, store: Store, bucket: str, key: str) -> BucketEvent:
    """Re-drive one object: re-emit its event and clear its quarantine entry.

    If the original is gone but a quarantined copy exists, the copy is restored first.
    """
    try:
        info = store.head(bucket, key)
    except ObjectNotFound:
        qkey = quarantine_key(settings, key)
        try:
            with tempfile.TemporaryDirectory(prefix="lakewire-replay-") as tmp:
                staged = Path(tmp) / "object"
                with staged.open("wb") as fh:
                    for chunk in store.get_stream(bucket, qkey):
                        fh.write(chunk)
                info = store.put(bucket, key, staged)
        except ObjectNotFound:
            raise ReplayError(
                f"object '{bucket}/{key}' does not exist and is not in quarantine"
            ) from None
    ev = object_event(store, bucket, info, "lakewire-replay")
    _publish(settings, [ev], f"/replay/{uuid.uuid4().hex}")
    if find_quarantined(settings, store, bucket, key) is not None:
        release(settings, store, bucket, key)
    return ev


def replay_quarantined(settings: Settings, store: Store) -> list[BucketEvent]:
    """Re-drive every quarantined object of every routed bucket."""
    buckets = sorted({r.bucket for r in settings_routes(settings)})
    out = []
    for bucket in buckets:
        if not store.bucket_exists(bucket):
            continue
        for rec in list_quarantined(settings, store, bucket):
            out.append(replay_object(settings, store, bucket, rec.key))
    return out
