"""The JetStream sensor: the stream is a log, the cursor is its sequence number.

Each tick reads from cursor+1, bounded in count and wall time, groups events by route and target
table into micro-batches, and returns the run requests with the new cursor in one
``SensorResult``. Nothing is acked or deleted: a tick Dagster cuts off or fails leaves the
cursor where it was and the next tick reads the same events again, which the run keys and the
table ledger make harmless.
"""

import hashlib
import json
from collections import defaultdict

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from lakehouse.settings import Settings
from pipelines.jobs import ingest_job
from pipelines.resources import LakewireResource
from pipelines.routes import route_for, settings_routes
from storage_service.events import BucketEvent
from storage_service.stream import read_after_sync


def plan_runs(settings: Settings, events: list[BucketEvent]) -> list[RunRequest]:
    """Group events by (route, table) into capped micro-batches; one run request per batch.

    A route with a fixed table gets one run per tick (more only past the object/byte caps); a
    pattern route gets one per table it feeds, because a run commits to exactly one table.
    Created events become rows; ``ObjectRemoved`` events matter only to routes whose
    ``on_delete`` is ``delete_rows``; lifecycle deletes and transitions are not routed at all.
    """
    routes = settings_routes(settings)
    latest: dict[tuple[str, str], BucketEvent] = {}
    removals: dict[tuple[str, str], BucketEvent] = {}
    for ev in events:
        route = route_for(routes, ev.bucket, ev.key, settings)
        if route is None:
            continue
        if ev.is_created:
            # Within one tick only the newest version of a key matters.
            latest[(ev.bucket, ev.key)] = ev
        elif ev.is_removed and route.on_delete == "delete_rows":
            removals[(ev.bucket, ev.key)] = ev
            latest.pop((ev.bucket, ev.key), None)  # removed after it was written
    by_table: dict[tuple[str, str], list[tuple[str, BucketEvent]]] = defaultdict(list)
    for action, evs in (("remove", removals), ("create", latest)):
        for ev in evs.values():
            route = route_for(routes, ev.bucket, ev.key, settings)
            assert route is not None
            by_table[(route.name, route.table_for(ev.key).qualified)].append((action, ev))

    requests = []
    for (route_name, table), items in by_table.items():
        items.sort(key=lambda item: item[1].stream_seq or 0)
        batch: list[tuple[str, BucketEvent]] = []
        size = 0
        for action, ev in items:
            if batch and (
                len(batch) >= settings.batch_max_objects
                or size + ev.size > settings.batch_max_bytes
            ):
                requests.append(_request(route_name, table, batch))
                batch, size = [], 0
            batch.append((action, ev))
            size += ev.size
        if batch:
            requests.append(_request(route_name, table, batch))
    return requests


def _request(route_name: str, table: str, batch: list[tuple[str, BucketEvent]]) -> RunRequest:
    objects = [
        {
            "bucket": e.bucket,
            "key": e.key,
            "etag": e.etag,
            "sequencer": e.sequencer,
            "size": e.size,
            "action": action,
        }
        for action, e in batch
    ]
    identity = json.dumps(
        [[o["action"], o["bucket"], o["key"], o["etag"], o["sequencer"]] for o in objects]
    )
    run_key = f"{table}:{hashlib.sha256(identity.encode()).hexdigest()[:24]}"
    seqs = [e.stream_seq or 0 for _, e in batch]
    keys = ", ".join(f"{e.bucket}/{e.key}" for _, e in batch)
    return RunRequest(
        run_key=run_key,
        run_config={
            "ops": {
                "ingest_objects": {
                    "config": {"route": route_name, "table": table, "objects": objects}
                }
            }
        },
        tags={
            "lakewire/table": table,
            "lakewire/route": route_name,
            "lakewire/objects": str(len(objects)),
            "lakewire/stream_seq": f"{min(seqs)}-{max(seqs)}",
            "lakewire/first_object": f"{batch[0][1].bucket}/{batch[0][1].key}"[:200],
            "lakewire/sources": keys if len(keys) <= 1000 else keys[:997] + "...",
        },
    )


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
        cursor = int(context.cursor or 0)
        batch = read_after_sync(
            settings, cursor, settings.sensor_max_events, settings.sensor_max_seconds
        )
        if batch.stream_last_seq < cursor:
            # The stream was recreated (its sequence restarted below our cursor): read it from
            # the start; run keys and the ledger make anything already ingested a no-op.
            context.log.warning(
                f"stream tail {batch.stream_last_seq} is behind cursor {cursor}: "
                "the stream was recreated; reading it from the start"
            )
            cursor = 0
            batch = read_after_sync(
                settings, cursor, settings.sensor_max_events, settings.sensor_max_seconds
            )
        if batch.last_seq == cursor:
            return SkipReason(f"no new events after stream sequence {cursor}")
        if batch.malformed:
            context.log.warning(f"skipped malformed messages at sequences {batch.malformed}")
        requests = plan_runs(settings, batch.events)
        context.log.info(
            f"stream {cursor + 1}..{batch.last_seq} (tail {batch.stream_last_seq}): "
            f"{len(batch.events)} events -> {len(requests)} runs"
        )
        return SensorResult(run_requests=requests, cursor=str(batch.last_seq))

    return bucket_events
