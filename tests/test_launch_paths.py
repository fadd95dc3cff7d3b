"""How ingestion runs start on the embedded platform: pushed by the dispatcher the moment an
event lands, into a worker forked warm; and, with either piece down, by the sensor and a fresh
worker, with nothing lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lakehouse.settings import Settings
from lakewire.processes import pid_alive
from lakewire.run_workers import server_ready, worker_socket
from tests.helpers import Platform, wait_for, write_csv

pytestmark = pytest.mark.platform


def _tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def _table_runs(platform: Platform, table: str) -> list[dict[str, str]]:
    return [
        _tags(r) | {"status": r["status"]}
        for r in platform.ingest_runs()
        if _tags(r)["lakewire/table"] == table
    ]


def _dispatcher_follows(platform: Platform) -> bool:
    """The dispatcher writes its pid here once it follows the stream (the ready check of
    `lakewire up`, which the platform fixture passed)."""
    try:
        pid = int((platform.data_dir / "state" / "dispatch.ready").read_text())
    except (OSError, ValueError):
        return False
    return pid_alive(pid)


def test_an_event_is_pushed_by_the_dispatcher_into_a_warm_worker(
    platform: Platform, tmp_path: Path
) -> None:
    platform.lakewire("put", str(write_csv(tmp_path / "a.csv", 20)), "landing/pushed/a.csv")
    wait_for(lambda: platform.count("delta.default.pushed") == 20, 60, "20 rows", 1)
    wait_for(lambda: platform.settled_runs(), 60, "runs to settle", 1)
    runs = _table_runs(platform, "delta.default.pushed")
    assert [r["status"] for r in runs] == ["SUCCESS"], runs
    # Launched through the GraphQL API by the dispatcher, not requested by a sensor tick ...
    assert "dagster/sensor_name" not in runs[0]
    # ... and run by a worker the warm server forked, still a Dagster run worker of its own.
    assert runs[0]["lakewire/worker"].startswith("warm:")


def test_with_dispatcher_and_warm_workers_down_the_sensor_and_a_fresh_worker_ingest(
    platform: Platform, tmp_path: Path
) -> None:
    out = platform.supervisorctl("stop", "dispatch", "run-workers")
    assert "dispatch: stopped" in out and "run-workers: stopped" in out, out
    try:
        platform.lakewire("put", str(write_csv(tmp_path / "b.csv", 30)), "landing/pulled/b.csv")
        wait_for(lambda: platform.count("delta.default.pulled") == 30, 90, "30 rows", 1)
        wait_for(lambda: platform.settled_runs(), 60, "runs to settle", 1)
        runs = _table_runs(platform, "delta.default.pulled")
        assert [r["status"] for r in runs] == ["SUCCESS"], runs
        assert runs[0]["dagster/sensor_name"] == "bucket_events"
        assert "lakewire/worker" not in runs[0]  # the code server's fresh worker took it
    finally:
        out = platform.supervisorctl("start", "dispatch", "run-workers")
        assert "dispatch: started" in out and "run-workers: started" in out, out
        wait_for(lambda: _dispatcher_follows(platform), 60, "the dispatcher to follow", 0.5)
        # A launch before the warm server listens falls back to a fresh worker, by design.
        sock = worker_socket(Settings(data_dir=platform.data_dir))
        wait_for(lambda: server_ready(sock), 60, "the warm worker server", 0.5)
    # Back up: the next event is pushed and warm again, and nothing was ingested twice.
    platform.lakewire(
        "put", str(write_csv(tmp_path / "c.csv", 5, start=30)), "landing/pulled/c.csv"
    )
    wait_for(lambda: platform.count("delta.default.pulled") == 35, 60, "35 rows", 1)
    wait_for(lambda: platform.settled_runs(), 60, "runs to settle", 1)
    latest = _table_runs(platform, "delta.default.pulled")[0]
    assert "dagster/sensor_name" not in latest and latest["lakewire/worker"].startswith("warm:")
    assert platform.sql("SELECT count(DISTINCT id) AS n FROM delta.default.pulled") == [{"n": 35}]
