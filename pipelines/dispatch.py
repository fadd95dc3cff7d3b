"""The push path: a table's ingestion run is requested the moment its bucket event lands.

Waiting for the sensor's next tick was a third of the event-to-rows time
(``docs/performance.md``). This process holds an ordered JetStream consumer on the bucket
events, collects what arrives within a few milliseconds, and launches runs through Dagster's
public GraphQL API (``DagsterGraphQLClient``), so each is an ordinary queued Dagster run with its
logs, materialization and checks. Which runs to request is ``pipelines.requests.plan_runs``,
the sensor's own function over the same run storage, so the sensor (still ticking, the
catch-up path) finds these events covered and requests nothing twice; whatever this process
misses (it was down, NATS dropped it, the webserver refused) the sensor picks up at its cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

import nats
from dagster import DagsterInstance, RunRequest
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from nats.js.api import DeliverPolicy

from lakehouse.jsonlogs import configure_json_logging
from lakehouse.routes import RoutesError
from lakehouse.settings import Settings
from pipelines.requests import RunStorage, plan_runs
from storage_service.events import BucketEvent, parse_message
from storage_service.stream import created_of

log = logging.getLogger("lakewire.dispatch")

LOCATION_NAME = "lakewire"  # the code location's name in both workspaces (embedded, compose)
REPOSITORY_NAME = "__repository__"  # Dagster's name for a module's ``Definitions``
JOB_NAME = "ingest_job"
# Events that arrive this close together share one planning pass (a burst asks once per table).
GATHER_SECONDS = 0.02
RETRY_SECONDS = 1.0


class Dispatcher:
    """Plans and launches the runs for a batch of events (blocking; called off the event loop)."""

    def __init__(
        self, settings: Settings, instance: DagsterInstance, client: DagsterGraphQLClient
    ) -> None:
        self._settings = settings
        self._instance = instance
        self._client = client

    def dispatch(self, events: list[BucketEvent], stream_created: str = "") -> list[str]:
        """Launch the runs these events need (their sequences are in the stream created at
        ``stream_created``); returns the run ids launched."""
        try:
            runs = RunStorage(self._instance, stream_created)
            requests = plan_runs(self._settings, events, runs)
        except RoutesError as exc:  # the sensor's tick reports it; nothing is lost meanwhile
            log.error("routes: %s", exc)
            return []
        return [run_id for rr in requests if (run_id := self._launch(rr))]

    def _launch(self, rr: RunRequest) -> str | None:
        try:
            run_id = self._client.submit_job_execution(
                JOB_NAME,
                repository_location_name=LOCATION_NAME,
                repository_name=REPOSITORY_NAME,
                run_config=rr.run_config,
                tags=dict(rr.tags),
            )
        except DagsterGraphQLClientError as exc:
            log.warning("launch for %s refused (%s); the sensor will retry", rr.tags, exc)
            return None
        log.info(
            "run requested",
            extra={
                "run_id": run_id,
                "table": rr.tags["lakewire/table"],
                "objects": rr.tags["lakewire/sources"],
            },
        )
        return run_id


async def consume(
    settings: Settings, dispatcher: Dispatcher, ready_file: Path | None = None
) -> None:
    """Follow the stream from its tail until the connection drops (the caller reconnects)."""
    nc = await nats.connect(
        settings.effective_nats_url,
        allow_reconnect=False,
        connect_timeout=2,
        max_reconnect_attempts=1,
    )
    try:
        js = nc.jetstream()
        # Raises until platform init created the stream; its creation time names this one.
        info = await js.stream_info(settings.stream_name)
        stream_created = created_of(info)
        sub = await js.subscribe(
            f"{settings.subject_prefix}.>",
            stream=settings.stream_name,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
            idle_heartbeat=2.0,
        )
        log.info("following %s from its tail", settings.stream_name)
        if ready_file is not None:  # the supervisor's ready check: events are pushed from now
            ready_file.write_text(str(os.getpid()))
        while not nc.is_closed:
            msgs = [await sub.next_msg(timeout=None)]
            with contextlib.suppress(nats.errors.TimeoutError):
                while True:
                    msgs.append(await sub.next_msg(timeout=GATHER_SECONDS))
            events: list[BucketEvent] = []
            for msg in msgs:
                with contextlib.suppress(ValueError):  # the sensor logs malformed messages
                    events.extend(parse_message(msg.data, stream_seq=msg.metadata.sequence.stream))
            if events:
                await asyncio.to_thread(dispatcher.dispatch, events, stream_created)
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


async def run_forever(settings: Settings, ready_file: Path | None = None) -> None:
    host, _, port = (
        settings.dagster_webserver or f"{settings.host}:{settings.dagster_port}"
    ).rpartition(":")
    client = DagsterGraphQLClient(host, port_number=int(port), timeout=30)
    dispatcher = Dispatcher(settings, DagsterInstance.get(), client)
    while True:
        try:
            await consume(settings, dispatcher, ready_file)
        except Exception as exc:  # NATS down or restarting: the sensor covers the gap
            log.warning("event stream unavailable (%s); retrying in %.0f s", exc, RETRY_SECONDS)
        await asyncio.sleep(RETRY_SECONDS)


def main() -> None:
    """``python -m pipelines.dispatch [READY_FILE]``: what the supervisor runs beside the daemon
    (it writes its pid to READY_FILE once it follows the stream)."""
    configure_json_logging()
    ready = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    if ready is not None:
        ready.unlink(missing_ok=True)
    asyncio.run(run_forever(Settings(), ready))


if __name__ == "__main__":
    main()
