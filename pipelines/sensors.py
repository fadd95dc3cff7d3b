"""The JetStream sensor: the stream is a log, the cursor is its sequence number.

Each tick reads from cursor+1, bounded in count and wall time, groups events by route and
target table, and returns at most one run request per table that has no run waiting already,
with the new cursor, in one ``SensorResult``; each run drains its table's backlog when it
starts. Nothing is acked or deleted: a tick Dagster cuts off or fails leaves the cursor where
it was and the next tick reads the same events again, which the run keys and the table ledger
make harmless.
"""

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from lakehouse.routes import settings_routes
from lakehouse.settings import Settings
from pipelines.batches import DRAINED_STREAM_TAG, DRAINED_TAG, STREAM_TAG, Item, pending_by_table
from pipelines.jobs import ingest_job
from pipelines.resources import LakewireResource
from storage_service.events import BucketEvent
from storage_service.stream import format_cursor, parse_cursor, read_after_sync


def plan_runs(
    settings: Settings,
    events: list[BucketEvent],
    has_queued_run: Callable[[str], bool] = lambda table: False,
    drained_through: Callable[[str], int | None] = lambda table: None,
    stream_created: str = "",
) -> list[RunRequest]:
    """At most one run request per table with new events, and none for a table that already
    has a queued run: that run drains the stream for its table when it starts, these events
    included, so however files trickle in a table never has more than one run waiting. Events
    a successful run already drained (it read ahead of this cursor) ask for nothing."""
    requests = []
    for (route_name, table), items in pending_by_table(
        settings, settings_routes(settings), events
    ).items():
        done = drained_through(table)
        items = [item for item in items if (item[1].stream_seq or 0) > (done or 0)]
        if not items or has_queued_run(table):
            continue
        # The run drains from just after the last successful drain (or from where the table's
        # failed runs started, before it had one), so the objects of a run that failed since
        # are taken again too (the ledger skips what did land).
        first = done + 1 if done is not None else min(e.stream_seq or 0 for _, e in items)
        requests.append(_request(route_name, table, items, first, stream_created))
    return requests


def _request(
    route_name: str, table: str, items: list[Item], first_seq: int, stream_created: str
) -> RunRequest:
    seqs = [e.stream_seq or 0 for _, e in items]
    identity = json.dumps([[action, e.bucket, e.key, e.etag, e.sequencer] for action, e in items])
    run_key = f"{table}:{hashlib.sha256(identity.encode()).hexdigest()[:24]}"
    keys = ", ".join(f"{e.bucket}/{e.key}" for _, e in items)
    return RunRequest(
        run_key=run_key,
        run_config={
            "ops": {
                "ingest_objects": {
                    "config": {"route": route_name, "table": table, "drain_from_seq": first_seq}
                }
            }
        },
        tags={
            "lakewire/table": table,
            "lakewire/route": route_name,
            "lakewire/objects": str(len(items)),
            "lakewire/stream_seq": f"{min(seqs)}-{max(seqs)}",
            STREAM_TAG: stream_created,
            "lakewire/first_object": f"{items[0][1].bucket}/{items[0][1].key}"[:200],
            "lakewire/sources": keys if len(keys) <= 1000 else keys[:997] + "...",
        },
    )


def drained_check(instance: DagsterInstance, stream_created: str) -> Callable[[str], int | None]:
    """The stream sequence up to which a table's successful runs drained its backlog, in the
    stream as it is now: a mark from before the stream was deleted and recreated is a sequence
    of another stream, and would hide every new event numbered below it. A table none of whose
    runs succeeded yet starts from where its failed runs did, so the objects of its very first
    run are retaken when that run dies (the fault suite found them left to the reconcile
    schedule). ``None``: nothing is known, the tick's own events say where to start."""

    def drained_through(table: str) -> int | None:
        runs = instance.get_runs(
            filters=RunsFilter(tags={"lakewire/table": table}, statuses=[DagsterRunStatus.SUCCESS]),
            limit=5,
        )
        marks = [
            int(r.tags.get(DRAINED_TAG, 0))
            for r in runs
            if r.tags.get(DRAINED_STREAM_TAG, "") == stream_created
        ]
        if marks:
            return max(marks)
        failed = instance.get_runs(
            filters=RunsFilter(
                tags={"lakewire/table": table, STREAM_TAG: stream_created},
                statuses=[DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED],
            ),
            limit=20,
        )
        starts = [_drain_from(r.run_config) for r in failed]
        return min(starts) - 1 if starts else None

    return drained_through


def _drain_from(run_config: Mapping[str, Any]) -> int:
    config = run_config.get("ops", {}).get("ingest_objects", {}).get("config", {})
    return int(config.get("drain_from_seq") or 1)


def queued_run_check(instance: DagsterInstance) -> Callable[[str], bool]:
    """Whether a table already has a run waiting to start (queued, or not yet submitted)."""

    def has_queued_run(table: str) -> bool:
        waiting = instance.get_runs(
            filters=RunsFilter(
                tags={"lakewire/table": table},
                statuses=[DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED],
            ),
            limit=1,
        )
        return bool(waiting)

    return has_queued_run


def build_event_sensor(interval_seconds: int) -> SensorDefinition:
    @sensor(
        name="bucket_events",
        job=ingest_job,
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Reads bucket notifications from JetStream and requests ingestion runs.",
    )
    def bucket_events(
        context: SensorEvaluationContext, lakewire: LakewireResource
    ) -> SensorResult | SkipReason:
        settings = lakewire.settings()
        cursor, stream_created = parse_cursor(context.cursor)
        batch = read_after_sync(
            settings, cursor, settings.sensor_max_events, settings.sensor_max_seconds
        )
        if batch.stream_last_seq < cursor or (
            stream_created and batch.stream_created and batch.stream_created != stream_created
        ):
            # The stream was recreated (a new creation time; its sequence restarted): read it
            # from the start; run keys and the ledger make anything already ingested a no-op.
            context.log.warning(
                f"stream created {batch.stream_created or '?'} (tail {batch.stream_last_seq}) "
                f"is not the one of cursor {context.cursor}: the stream was recreated; "
                "reading it from the start"
            )
            cursor = 0
            batch = read_after_sync(
                settings, cursor, settings.sensor_max_events, settings.sensor_max_seconds
            )
        if batch.last_seq == cursor:
            return SkipReason(f"no new events after stream sequence {cursor}")
        if batch.malformed:
            context.log.warning(f"skipped malformed messages at sequences {batch.malformed}")
        requests = plan_runs(
            settings,
            batch.events,
            queued_run_check(context.instance),
            drained_check(context.instance, batch.stream_created),
            batch.stream_created,
        )
        for rr in requests:  # the route each object took (`lakewire routes explain` says why)
            t = rr.tags
            context.log.info(
                f"route {t['lakewire/route']} -> {t['lakewire/table']}: {t['lakewire/sources']}"
            )
        context.log.info(
            f"stream {cursor + 1}..{batch.last_seq} (tail {batch.stream_last_seq}): "
            f"{len(batch.events)} events -> {len(requests)} runs"
        )
        return SensorResult(
            run_requests=requests, cursor=format_cursor(batch.last_seq, batch.stream_created)
        )

    return bucket_events
