"""Which ingestion runs to request for a batch of stream events: one function for both launch
paths, the sensor (catch-up) and the dispatcher (push), so they agree on what is already covered.

A table never needs more than one run waiting: a run drains its table's stream backlog up to the
tail as it is when the run starts. So events ask for nothing when their table has a run that
cannot have read its tail yet (queued or starting: the tail is read after the run is marked
started), or a run that read a tail at or past them (finished, or draining now with its mark).
The run requested starts its drain just after the table's last *successful* drain, so whatever
a failed run left behind is taken again (the ledger skips what did land); before a table's
first success, where its failed runs started. Drain marks count only in the stream they were
read from (its creation time): a deleted and recreated stream numbers its events from 1 again.
Dagster run keys dedupe only inside the sensor daemon; the run-storage check here is what keeps
the two paths from queueing twice (a request from both in the same instant costs one extra run
that finds nothing left, never a double row).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunRequest, RunsFilter

from lakehouse.routes import settings_routes
from lakehouse.settings import Settings
from pipelines.batches import (
    DRAINED_STREAM_TAG,
    DRAINED_TAG,
    DRAINING_TAG,
    STREAM_SEQ_TAG,
    STREAM_TAG,
    Item,
    pending_by_table,
)
from pipelines.run_logs import with_json_logs
from storage_service.events import BucketEvent

TABLE_TAG = "lakewire/table"
TENANT_TAG = "lakewire/tenant"
# How many recent runs of a table to look at: runs of one table run one at a time, so the
# latest successful and in-progress drains are always among the newest few.
RECENT_RUNS = 5


@dataclass(frozen=True)
class TableRuns:
    """A table's runs as run storage has them now."""

    waiting: bool  # a drain run that cannot have read its tail yet (queued, starting)
    # Stream sequence the last successful drain reached (before any success: just before where
    # the failed runs started; None: no run of the table in this stream).
    drained: int | None
    covered: int  # the same, or further for a drain in progress


class RunStorage:
    """Reads a table's runs from the Dagster instance (the daemon's and the dispatcher's), as
    far as they concern the stream created at ``stream_created``."""

    def __init__(self, instance: DagsterInstance, stream_created: str = "") -> None:
        self._instance = instance
        self.stream_created = stream_created

    def _ours(self, run: DagsterRun) -> bool:
        return run.tags.get(DRAINED_STREAM_TAG, "") == self.stream_created

    def table_runs(self, table: str) -> TableRuns:
        by_tag = {TABLE_TAG: table}
        waiting = bool(
            self._instance.get_runs(
                filters=RunsFilter(
                    tags=by_tag,
                    statuses=[
                        DagsterRunStatus.QUEUED,
                        DagsterRunStatus.NOT_STARTED,
                        DagsterRunStatus.STARTING,
                    ],
                ),
                limit=1,
            )
        )
        started = self._instance.get_runs(
            filters=RunsFilter(tags=by_tag, statuses=[DagsterRunStatus.STARTED]),
            limit=RECENT_RUNS,
        )
        # A started drain covers what is at or below the tail it read (its draining mark). One
        # that has no mark yet may have read its tail already (the mark is written after the
        # read): it covers nothing, so the events ask for a run that queues behind it. (Counting
        # it as waiting lost a burst's events that landed between its read and its mark.)
        draining = 0
        for run in started:
            if DRAINING_TAG in run.tags and self._ours(run):
                draining = max(draining, int(run.tags[DRAINING_TAG]))
        succeeded = self._instance.get_runs(
            filters=RunsFilter(tags=by_tag, statuses=[DagsterRunStatus.SUCCESS]),
            limit=RECENT_RUNS,
        )
        marks = [int(r.tags.get(DRAINED_TAG, 0)) for r in succeeded if self._ours(r)]
        drained = max(marks) if marks else self._failed_start(table)
        return TableRuns(waiting=waiting, drained=drained, covered=max(drained or 0, draining))

    def _failed_start(self, table: str) -> int | None:
        """Just before where the table's unfinished or failed runs began, while none has
        succeeded: the first run killed mid-run leaves no drain mark, and its objects must not
        wait for the reconcile schedule (the fault suite found them doing so). A run still
        STARTED counts too: it may be the one being killed, and run monitoring marks it failed
        only at its next poll, after the next run may already have been planned."""
        unfinished = self._instance.get_runs(
            filters=RunsFilter(
                tags={TABLE_TAG: table, STREAM_TAG: self.stream_created},
                statuses=[
                    DagsterRunStatus.FAILURE,
                    DagsterRunStatus.CANCELED,
                    DagsterRunStatus.STARTED,
                ],
            ),
            limit=20,
        )
        starts = [_drain_from(r.run_config) for r in unfinished]
        return min(starts) - 1 if starts else None


def _drain_from(run_config: Mapping[str, Any]) -> int:
    config = run_config.get("ops", {}).get("ingest_objects", {}).get("config", {})
    return int(config.get("drain_from_seq") or 1)


class NoRuns:
    """Run storage with no runs (tests of the planning alone)."""

    stream_created = ""

    def table_runs(self, table: str) -> TableRuns:
        return TableRuns(waiting=False, drained=None, covered=0)


def plan_runs(
    settings: Settings, events: list[BucketEvent], runs: RunStorage | NoRuns
) -> list[RunRequest]:
    """At most one run request per table with events no run covers yet."""
    requests = []
    routes = settings_routes(settings)
    by_name = {r.name: r for r in routes}
    for (route_name, table), items in pending_by_table(settings, routes, events).items():
        state = runs.table_runs(table)
        items = [item for item in items if (item[1].stream_seq or 0) > state.covered]
        if not items or state.waiting:
            continue
        first = (
            state.drained + 1
            if state.drained is not None
            else min(e.stream_seq or 0 for _, e in items)
        )
        owners = {by_name[route_name].tenant_of(e.key) for _, e in items}
        tenant = owners.pop() if len(owners) == 1 else None
        requests.append(run_request(route_name, table, items, first, runs.stream_created, tenant))
    return requests


def run_request(
    route_name: str,
    table: str,
    items: list[Item],
    first_seq: int,
    stream_created: str = "",
    tenant: str | None = None,
) -> RunRequest:
    """The run for a table's drain from ``first_seq``; its tags name the objects seen so far
    (the UI's run list), the run's own metadata names what it actually ingested. ``tenant``:
    the registered tenant whose objects these all are; Dagster's run queue limits each tenant's
    concurrent runs by that tag."""
    seqs = [e.stream_seq or 0 for _, e in items]
    identity = json.dumps([[action, e.bucket, e.key, e.etag, e.sequencer] for action, e in items])
    run_key = f"{table}:{hashlib.sha256(identity.encode()).hexdigest()[:24]}"
    keys = ", ".join(f"{e.bucket}/{e.key}" for _, e in items)
    owner = {TENANT_TAG: tenant} if tenant else {}
    return RunRequest(
        run_key=run_key,
        run_config=with_json_logs(
            {
                "ops": {
                    "ingest_objects": {
                        "config": {
                            "route": route_name,
                            "table": table,
                            "drain_from_seq": first_seq,
                        }
                    }
                }
            }
        ),
        tags={
            TABLE_TAG: table,
            "lakewire/route": route_name,
            "lakewire/objects": str(len(items)),
            STREAM_SEQ_TAG: f"{min(seqs)}-{max(seqs)}",
            STREAM_TAG: stream_created,
            "lakewire/first_object": f"{items[0][1].bucket}/{items[0][1].key}"[:200],
            "lakewire/sources": keys if len(keys) <= 1000 else keys[:997] + "...",
            **owner,
        },
    )
