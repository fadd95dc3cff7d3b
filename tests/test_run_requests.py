"""Which runs the two launch paths (sensor and dispatcher) request, read from a real Dagster
instance's run storage: never a second run for events a run will take or took."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, instance_for_test

from pipelines.batches import (
    DRAINED_STREAM_TAG,
    DRAINED_TAG,
    DRAINING_TAG,
    STREAM_SEQ_TAG,
    STREAM_TAG,
)
from pipelines.requests import TABLE_TAG, RunStorage, plan_runs
from pipelines.sensors import leave_fresh_to_dispatcher
from storage_service.events import OBJECT_CREATED_PUT, BucketEvent

ROUTES = """
routes:
  - name: per_dataset
    glob: "*/*.csv"
    table: "default.{dataset}"
"""
TABLE = "delta.default.shop"


@pytest.fixture
def env(pipeline_env: Callable[[str | None], Any]) -> Iterator[tuple[Any, DagsterInstance]]:
    settings, _ = pipeline_env(ROUTES)
    with instance_for_test() as instance:
        yield settings, instance


def _event(seq: int, dataset: str = "shop", age: float = 60.0) -> BucketEvent:
    when = datetime.now(UTC) - timedelta(seconds=age)
    return BucketEvent(
        OBJECT_CREATED_PUT,
        "landing",
        f"{dataset}/{seq}.csv",
        10,
        f"e{seq}",
        f"{seq:016x}",
        when,
        stream_seq=seq,
    )


def _run(instance: DagsterInstance, status: DagsterRunStatus, **tags: str) -> None:
    # (QUEUED needs a code location's job origin: the platform tests queue real runs.)
    instance.add_run(
        DagsterRun(
            job_name="ingest_job",
            run_id=str(uuid.uuid4()),
            status=status,
            tags={TABLE_TAG: TABLE, STREAM_SEQ_TAG: "1-1", **tags},
        )
    )


def _drain_from(requests: list[Any]) -> list[tuple[str, int]]:
    return [
        (rr.tags[TABLE_TAG], rr.run_config["ops"]["ingest_objects"]["config"]["drain_from_seq"])
        for rr in requests
    ]


def test_no_runs_one_request_per_table_from_its_first_event(env: Any) -> None:
    settings, instance = env
    events = [_event(3), _event(4), _event(5, "web")]
    got = _drain_from(plan_runs(settings, events, RunStorage(instance)))
    assert sorted(got) == [("delta.default.shop", 3), ("delta.default.web", 5)]


@pytest.mark.parametrize("status", [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING])
def test_a_run_that_has_not_started_draining_covers_every_event(env: Any, status: Any) -> None:
    settings, instance = env
    _run(instance, status)
    assert plan_runs(settings, [_event(7), _event(8)], RunStorage(instance)) == []


def test_a_started_drain_without_its_mark_covers_nothing(env: Any) -> None:
    """It may have read its tail already (the mark is written after the read): events that
    landed since would be nobody's. They ask for a run that queues behind it."""
    settings, instance = env
    instance.add_run(  # no draining mark (yet); it drains from 5
        DagsterRun(
            job_name="ingest_job",
            run_id=str(uuid.uuid4()),
            status=DagsterRunStatus.STARTED,
            run_config={"ops": {"ingest_objects": {"config": {"drain_from_seq": 5}}}},
            tags={TABLE_TAG: TABLE, STREAM_SEQ_TAG: "5-5", STREAM_TAG: ""},
        )
    )
    # Before any success the next run starts where the unfinished one did: if that one is
    # being killed, its objects are taken again (the ledger skips what it did commit).
    assert _drain_from(plan_runs(settings, [_event(9)], RunStorage(instance))) == [(TABLE, 5)]


def test_a_drain_in_progress_covers_up_to_its_tail_and_the_next_run_starts_after_the_last_success(
    env: Any,
) -> None:
    settings, instance = env
    _run(instance, DagsterRunStatus.SUCCESS, **{DRAINED_TAG: "4"})
    _run(instance, DagsterRunStatus.STARTED, **{DRAINING_TAG: "8"})
    assert plan_runs(settings, [_event(6), _event(8)], RunStorage(instance)) == []
    # Event 9 is past the running drain's tail: a new run, draining from just after the last
    # *successful* drain, so if the running one fails its objects are taken again.
    assert _drain_from(plan_runs(settings, [_event(8), _event(9)], RunStorage(instance))) == [
        (TABLE, 5)
    ]


def test_a_failed_drain_covers_nothing(env: Any) -> None:
    settings, instance = env
    _run(instance, DagsterRunStatus.SUCCESS, **{DRAINED_TAG: "2"})
    _run(instance, DagsterRunStatus.FAILURE, **{DRAINING_TAG: "6", DRAINED_TAG: "6"})
    assert _drain_from(plan_runs(settings, [_event(5)], RunStorage(instance))) == [(TABLE, 3)]


def test_drain_marks_count_only_in_the_stream_they_were_read_from(env: Any) -> None:
    """After the stream is deleted and recreated, its events are numbered from 1 again: the old
    stream's marks must not hide them (the fault suite found them hidden)."""
    settings, instance = env
    _run(instance, DagsterRunStatus.SUCCESS, **{DRAINED_TAG: "40", DRAINED_STREAM_TAG: "old"})
    _run(instance, DagsterRunStatus.STARTED, **{DRAINING_TAG: "50", DRAINED_STREAM_TAG: "old"})
    assert plan_runs(settings, [_event(3)], RunStorage(instance, "old")) == []
    new = plan_runs(settings, [_event(3)], RunStorage(instance, "new"))
    assert _drain_from(new) == [(TABLE, 3)] and new[0].tags[STREAM_TAG] == "new"


def test_before_a_first_success_a_run_planned_while_another_drains_starts_where_it_did(
    env: Any,
) -> None:
    """The fault suite's daemon-and-worker kill: the next run is planned while the killed one is
    still STARTED with its draining mark (monitoring fails it at its next poll)."""
    settings, instance = env
    instance.add_run(
        DagsterRun(
            job_name="ingest_job",
            run_id=str(uuid.uuid4()),
            status=DagsterRunStatus.STARTED,
            run_config={"ops": {"ingest_objects": {"config": {"drain_from_seq": 3}}}},
            tags={TABLE_TAG: TABLE, STREAM_SEQ_TAG: "3-3", STREAM_TAG: "", DRAINING_TAG: "8"},
        )
    )
    assert plan_runs(settings, [_event(7)], RunStorage(instance)) == []  # under its mark
    assert _drain_from(plan_runs(settings, [_event(9)], RunStorage(instance))) == [(TABLE, 3)]


def test_before_a_tables_first_success_its_next_run_starts_where_the_failed_ones_did(
    env: Any,
) -> None:
    """A table's first run killed mid-run leaves no drain mark: the next run must go back for
    its objects instead of starting at its own events (the fault suite found them lost to the
    reconcile schedule)."""
    settings, instance = env
    config = {"ops": {"ingest_objects": {"config": {"drain_from_seq": 2}}}}
    instance.add_run(
        DagsterRun(
            job_name="ingest_job",
            run_id=str(uuid.uuid4()),
            status=DagsterRunStatus.FAILURE,
            run_config=config,
            tags={TABLE_TAG: TABLE, STREAM_SEQ_TAG: "2-4", STREAM_TAG: ""},
        )
    )
    assert _drain_from(plan_runs(settings, [_event(9)], RunStorage(instance))) == [(TABLE, 2)]


def test_the_sensor_leaves_fresh_events_to_the_dispatcher_and_keeps_its_cursor_before_them() -> (
    None
):
    old, fresh, later = _event(10, age=30), _event(11, age=0.1), _event(12, age=0.05)
    assert leave_fresh_to_dispatcher([old, fresh, later], 12, 2.0) == ([old], 10)
    assert leave_fresh_to_dispatcher([fresh], 11, 2.0) == ([], 10)
    # No grace (no dispatcher), or a clock that dates the event in the future: taken at once.
    assert leave_fresh_to_dispatcher([old, fresh], 11, 0.0) == ([old, fresh], 11)
    future = _event(13, age=-120)
    assert leave_fresh_to_dispatcher([future], 13, 2.0) == ([future], 13)
