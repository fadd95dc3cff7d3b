"""The JetStream sensor, the catch-up path: the stream is a log, the cursor is its sequence.

The dispatcher (``pipelines/dispatch.py``) requests most runs the moment their event lands;
this sensor reads everything after its cursor anyway, so an event the dispatcher missed (it was
down, Dagster refused the launch) still gets its run. Each tick reads from cursor+1, bounded
in count and wall time, and returns the run requests of ``pipelines.requests.plan_runs`` (none
for what a run already covers) with the new cursor, in one ``SensorResult``; each run drains
its table's backlog when it starts. Nothing is acked or deleted: a tick Dagster cuts off or
fails leaves the cursor where it was and the next tick reads the same events again, which the
run-storage check and the table ledger make harmless.
"""

from datetime import UTC, datetime

from dagster import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from lakehouse.routes import settings_routes
from pipelines.batches import unrouted
from pipelines.jobs import ingest_job
from pipelines.requests import RunStorage, plan_runs
from pipelines.resources import LakewireResource
from storage_service.events import BucketEvent
from storage_service.stream import format_cursor, parse_cursor, read_after_sync


def leave_fresh_to_dispatcher(
    events: list[BucketEvent], last_seq: int, grace_seconds: float
) -> tuple[list[BucketEvent], int]:
    """The events this tick takes and the cursor after them: it stops before the first event
    younger than the grace, which the dispatcher is launching right now (a tick that planned it
    in the same instant would queue a second run). A clock that puts an event in the future
    does not hold the sensor back."""
    now = datetime.now(tz=UTC)
    for i, event in enumerate(events):
        age = (now - event.event_time).total_seconds()
        if 0 <= age < grace_seconds and event.stream_seq:
            return events[:i], event.stream_seq - 1
    return events, last_seq


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
        events, new_cursor = leave_fresh_to_dispatcher(
            batch.events, batch.last_seq, settings.dispatch_grace_seconds
        )
        if new_cursor == cursor:
            return SkipReason(f"events after {cursor} are fresh: the dispatcher launches them")
        requests = plan_runs(settings, events, RunStorage(context.instance, batch.stream_created))
        if lost := unrouted(settings, settings_routes(settings), events):
            context.log.warning(
                f"{len(lost)} objects match no route, so no table gets them "
                f"(`lakewire routes explain KEY` says why): {', '.join(lost[:20])}"
                + (" ..." if len(lost) > 20 else "")
            )
        for rr in requests:  # the route each object took (`lakewire routes explain` says why)
            t = rr.tags
            context.log.info(
                f"route {t['lakewire/route']} -> {t['lakewire/table']}: {t['lakewire/sources']}"
            )
        context.log.info(
            f"stream {cursor + 1}..{new_cursor} (tail {batch.stream_last_seq}): "
            f"{len(events)} events -> {len(requests)} runs"
        )
        return SensorResult(
            run_requests=requests, cursor=format_cursor(new_cursor, batch.stream_created)
        )

    return bucket_events
