"""Reconciliation: an object written with notifications off is found, re-emitted and ingested."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from dagster import build_sensor_context, instance_for_test

from lakehouse.routes import settings_routes
from lakehouse.tables import TableRef, open_target
from pipelines.ingestion import ingest_batch
from pipelines.jobs import ingest_job, reconcile_job
from pipelines.reconcile import reconcile
from pipelines.resources import LakewireResource
from pipelines.sensors import build_event_sensor
from storage_service.stream import read_after_sync
from tests.helpers import BIN, csv_bytes, land


@pytest.fixture
def env(pipeline_env: Callable[[str | None], Any]) -> Any:
    return pipeline_env(None)


def test_object_written_without_notification_is_found_and_ingested(env: Any) -> None:
    settings, store = env
    route = settings_routes(settings)[0]
    ref = TableRef("delta", "default", "shop")
    seen = land(store, "landing", "shop/seen.csv", csv_bytes(3))
    ingest_batch(settings, store, ref, [seen], "run-0", route=route)
    # Written straight into the store: no service, no watcher, so no event was ever sent.
    land(store, "landing", "shop/silent.csv", csv_bytes(5, start=10))
    bad = land(store, "landing", "shop/empty.csv", b"")
    ingest_batch(settings, store, ref, [bad], "run-0", route=route)  # quarantined
    land(store, "landing", "unrouted.bin", b"x")

    # Inside the grace period nothing is re-emitted: its event may still be in flight.
    assert reconcile(settings, store, grace_seconds=3600).missing == []

    result = reconcile(settings, store, grace_seconds=0)
    assert [e.key for e in result.missing] == ["shop/silent.csv"]
    assert result.quarantined == 1 and result.listed == 3
    events = read_after_sync(settings, 0, 100, 5).events
    assert [e.key for e in events] == ["shop/silent.csv"]

    with instance_for_test() as instance:
        ctx = build_sensor_context(instance=instance, resources={"lakewire": LakewireResource()})
        tick = build_event_sensor(5).evaluate_tick(ctx)
        assert tick.run_requests is not None and len(tick.run_requests) == 1
        rr = tick.run_requests[0]
        run = ingest_job.execute_in_process(
            run_config=rr.run_config, instance=instance, resources={"lakewire": LakewireResource()}
        )
        assert run.success
    assert open_target(settings, store, ref).row_count() == 8
    # Once ingested, the next sweep finds nothing, and a second re-emission would be harmless.
    assert reconcile(settings, store, grace_seconds=0).missing == []


def test_reconcile_job_and_cli(env: Any) -> None:
    settings, store = env
    land(store, "landing", "shop/a.csv", csv_bytes(2))
    with instance_for_test() as instance:
        run = reconcile_job.execute_in_process(
            run_config={"ops": {"reconcile_landing": {"config": {"grace_seconds": 0}}}},
            instance=instance,
            resources={"lakewire": LakewireResource()},
        )
        assert run.success
    assert [e.key for e in read_after_sync(settings, 0, 100, 5).events] == ["shop/a.csv"]

    env_vars = {k: v for k, v in os.environ.items() if not k.startswith("LAKEWIRE_")}
    env_vars.update(LAKEWIRE_DATA_DIR=str(settings.data_dir), LAKEWIRE_NATS_URL=settings.nats_url)
    out = subprocess.run(
        [str(BIN / "lakewire"), "reconcile", "--grace", "0", "--dry-run"],
        env=env_vars,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "would re-emit landing/shop/a.csv" in out.stdout
    assert "1 routed objects listed, 1 would re-emit" in out.stdout
    # A dry run publishes nothing.
    assert len(read_after_sync(settings, 0, 100, 5).events) == 1


def test_nats_down_is_a_one_line_error_and_nothing_is_lost(env: Any, nats: Any) -> None:
    settings, store = env
    land(store, "landing", "shop/a.csv", csv_bytes(2))
    nats.stop()
    env_vars = {k: v for k, v in os.environ.items() if not k.startswith("LAKEWIRE_")}
    env_vars.update(LAKEWIRE_DATA_DIR=str(settings.data_dir), LAKEWIRE_NATS_URL=settings.nats_url)
    out = subprocess.run(
        [str(BIN / "lakewire"), "reconcile", "--grace", "0"],
        env=env_vars,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot publish events to NATS" in lines[0], out.stderr
    # NATS back: the same sweep re-emits the object, which was never marked as handled.
    nats.start()
    assert [e.key for e in reconcile(settings, store, grace_seconds=0).missing] == ["shop/a.csv"]
    assert [e.key for e in read_after_sync(settings, 0, 100, 5).events] == ["shop/a.csv"]
