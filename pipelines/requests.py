"""Which ingestion runs to request for a batch of stream events: one function for both launch
paths, the sensor (catch-up) and the dispatcher (push), so they agree on what is already covered.

A table never needs more than one run waiting: a run drains its table's stream backlog up to the
tail as it is when the run starts. So events ask for nothing when their table has a run that
has not read its tail yet (queued, starting, or started and still before its drain), or a run
that read a tail at or past them (finished, or draining now). The run requested starts its
drain just after the table's last *successful* drain, so whatever a failed run left behind is
taken again (the ledger skips what did land). Dagster run keys dedupe only inside the sensor
daemon; the run-storage check here is what keeps the two paths from queueing twice (a request
from both in the same instant costs one extra run that finds nothing left, never a double row).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from dagster import DagsterInstance, DagsterRunStatus, RunRequest, RunsFilter

from lakehouse.routes import settings_routes
from lakehouse.settings import Settings
from pipelines.batches import DRAINED_TAG, DRAINING_TAG, STREAM_SEQ_TAG, Item, pending_by_table
from storage_service.events import BucketEvent

TABLE_TAG = "lakewire/table"
TENANT_TAG = "lakewire/tenant"
# How many recent runs of a table to look at: runs of one table run one at a time, so the
# latest successful and in-progress drains are always among the newest few.
RECENT_RUNS = 5


@dataclass(frozen=True)
class TableRuns:
    """A table's runs as run storage has them now."""

    waiting: bool  # a drain run that has not read its tail yet
    drained: int  # stream sequence the last successful drain reached
    covered: int  # the same, or further for a drain in progress


class RunStorage:
    """Reads a table's runs from the Dagster instance (the daemon's and the dispatcher's)."""

    def __init__(self, instance: DagsterInstance) -> None:
        self._instance = instance

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
        draining = 0
        for run in started:
            if DRAINING_TAG in run.tags:
                draining = max(draining, int(run.tags[DRAINING_TAG]))
            elif STREAM_SEQ_TAG in run.tags:  # a drain run about to read the tail
                waiting = True
        succeeded = self._instance.get_runs(
            filters=RunsFilter(tags=by_tag, statuses=[DagsterRunStatus.SUCCESS]),
            limit=RECENT_RUNS,
        )
        drained = max((int(r.tags.get(DRAINED_TAG, 0)) for r in succeeded), default=0)
        return TableRuns(waiting=waiting, drained=drained, covered=max(drained, draining))


class NoRuns:
    """Run storage with no runs (tests of the planning alone)."""

    def table_runs(self, table: str) -> TableRuns:
        return TableRuns(waiting=False, drained=0, covered=0)


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
        first = state.drained + 1 if state.drained else min(e.stream_seq or 0 for _, e in items)
        owners = {by_name[route_name].tenant_of(e.key) for _, e in items}
        tenant = owners.pop() if len(owners) == 1 else None
        requests.append(run_request(route_name, table, items, first, tenant))
    return requests


def run_request(
    route_name: str, table: str, items: list[Item], first_seq: int, tenant: str | None = None
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
        run_config={
            "ops": {
                "ingest_objects": {
                    "config": {"route": route_name, "table": table, "drain_from_seq": first_seq}
                }
            }
        },
        tags={
            TABLE_TAG: table,
            "lakewire/route": route_name,
            "lakewire/objects": str(len(items)),
            STREAM_SEQ_TAG: f"{min(seqs)}-{max(seqs)}",
            "lakewire/first_object": f"{items[0][1].bucket}/{items[0][1].key}"[:200],
            "lakewire/sources": keys if len(keys) <= 1000 else keys[:997] + "...",
            **owner,
        },
    )
