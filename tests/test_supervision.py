"""The embedded platform heals itself (issue 17): an idempotent `lakewire up`, a crash loop that
ends FATAL and is reported, a dead run worker whose run is failed by run monitoring. Killing
services while clients put objects, and accounting for every object after, is the fault
suite's (`tests/test_faults.py`, harness in `tests/faults.py`).

All tests share one platform (it takes ~30 s to start). Deadlines are generous; the restart
times are printed (run with -s) and belong to bench/reliability, not to assertions here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults import api_key, pids, services, status_json, supervisorctl
from tests.helpers import BIN, Platform, csv_bytes, platform_env, wait_for

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("supervised")
    p = Platform(data_dir, platform_env(data_dir))
    p.lakewire("up", "--detach")
    try:
        yield p
    finally:
        p.lakewire("down", check=False)


def test_state_is_private_and_supervisord_listens_on_a_unix_socket_only(
    platform: Platform,
) -> None:
    sock = platform.data_dir / "state" / "supervisor.sock"
    assert sock.is_socket()
    assert sock.stat().st_mode & 0o077 == 0
    assert (platform.data_dir / "state").stat().st_mode & 0o077 == 0
    conf = (platform.data_dir / "state" / "supervisord.conf").read_text()
    assert "[inet_http_server]" not in conf
    assert "logfile_maxbytes" in conf and "autorestart=unexpected" in conf


def test_up_on_a_running_platform_is_a_no_op(platform: Platform) -> None:
    before = pids(platform)
    proc = platform.lakewire("up", "--detach")
    assert "already up" in proc.stdout, proc.stdout
    assert pids(platform) == before


def test_up_starts_just_the_stopped_service(platform: Platform) -> None:
    before = pids(platform)
    out = supervisorctl(platform, "stop", "storage-service")
    assert "stopped" in out, out
    assert services(platform)["storage-service"]["state"] == "STOPPED"
    proc = platform.lakewire("up", "--detach")
    assert "started storage-service" in proc.stdout, proc.stdout
    after = pids(platform)
    assert after["storage-service"] != before["storage-service"]
    assert {n: p for n, p in after.items() if n != "storage-service"} == {
        n: p for n, p in before.items() if n != "storage-service"
    }
    assert httpx.get(f"{platform.storage_url}/healthz", timeout=5).status_code == 200


def test_a_run_worker_killed_with_its_code_server_is_failed_by_run_monitoring(
    platform: Platform,
) -> None:
    """The worker dies with the code server that launched it (as when the daemon's whole
    process group is killed), so nobody is left to report the run: the launcher's worker
    health check must, and the run is failed instead of staying STARTED. Its object is then
    ingested exactly once by the landing reconciliation (the schedule's job, run here by hand)."""
    from dagster import DagsterRunStatus

    from lakewire.run_launcher import LocalRunLauncher

    instance = platform.dagster_instance()
    assert isinstance(instance.run_launcher, LocalRunLauncher)
    table, big_rows = "delta.default.workers", 1_500_000  # a run that lasts a few seconds
    before = {r.run_id for r in instance.get_runs()}
    resp = httpx.put(
        f"{platform.storage_url}/api/buckets/landing/objects/workers/big.csv",
        content=csv_bytes(big_rows, start=10_000_000),
        headers={"Authorization": f"Bearer {api_key(platform)}"},
        timeout=120,
    )
    assert resp.status_code == 201, resp.text

    def new_run() -> str | None:
        for run in instance.get_runs():
            if run.run_id not in before and run.tags.get("lakewire/table") == table:
                return run.run_id
        return None

    run_id = wait_for(new_run, 90, "a run of the workers table", 0.1)
    waiting = (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING)
    run = wait_for(
        lambda: (r := instance.get_run_by_id(run_id)) and r.status not in waiting and r,
        90,
        "the run to start",
        0.01,
    )
    assert run.status == DagsterRunStatus.STARTED, run.status
    pid = instance.run_launcher._worker_pid(run)
    assert pid
    parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    os.kill(parent, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()

    def ended() -> Any:
        r = instance.get_run_by_id(run_id)
        return r if r is not None and r.status != DagsterRunStatus.STARTED else None

    failed = wait_for(
        ended,
        120,
        "run monitoring to end the run",
        0.5,
    )
    print(f"\ndead run worker -> run {failed.status.value} in {time.monotonic() - t0:.1f} s")
    assert failed.status == DagsterRunStatus.FAILURE
    messages = [
        (rec.event_log_entry.dagster_event.message or "")
        for rec in instance.get_records_for_run(run_id).records
        if rec.event_log_entry.dagster_event is not None
    ]
    assert any(f"run worker process {pid} is gone" in m for m in messages), messages[-3:]
    platform.lakewire("reconcile", "--grace", "0")
    wait_for(lambda: platform.count(table) == big_rows, 180, "rows after the retry", 2)
    wait_for(lambda: platform.settled_runs(), 120, "runs to settle", 1)
    assert platform.count(table) == big_rows


def test_a_crash_loop_ends_fatal_is_reported_and_the_rest_keeps_running(
    platform: Platform,
) -> None:
    before = pids(platform)
    crasher = json.dumps(
        [
            {"name": "crasher", "command": ["/bin/sh", "-c", "echo crash-loop-marker; exit 3"]},
            # Survives its start-up second, then crashes: supervisord alone would restart it
            # forever; the crash watch stops it after 5 crashes in 120 s.
            {
                "name": "flaky",
                "command": ["/bin/sh", "-c", "echo flaky-marker; sleep 1.5; exit 4"],
                "start_seconds": 1,
            },
        ]
    )
    env = {**platform.env, "LAKEWIRE_EXTRA_SERVICES": crasher}
    proc = subprocess.run(
        [str(BIN / "lakewire"), "up", "--detach"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "crasher is FATAL" in proc.stderr and "crash-loop-marker" in proc.stderr, proc.stderr
    report = {
        s["name"]: s for s in status_json(platform, LAKEWIRE_EXTRA_SERVICES=crasher)["services"]
    }
    crashed = report["crasher"]
    assert crashed["state"] == "FATAL"
    assert crashed["restarts"] == 3  # supervisord's startretries, then it gives up
    assert "exit status 3" in crashed["last_exit"] and "gave up" in crashed["last_exit"]
    assert any("crash-loop-marker" in line for line in crashed["last_log_lines"])

    def flaky_stopped() -> dict[str, Any] | None:
        row = {s["name"]: s for s in status_json(platform)["services"]}["flaky"]
        return row if row["state"] == "STOPPED" else None

    flaky = wait_for(flaky_stopped, 90, "the crash watch to stop flaky", 1)
    assert flaky["crash_loop"] and "crash loop: 5 unexpected exits" in flaky["last_exit"]
    assert "exit status 4" in flaky["last_exit"]
    assert any("flaky-marker" in line for line in flaky["last_log_lines"])
    # They stay down (no silent restarts) and every other service kept running untouched.
    time.sleep(5)
    report = {s["name"]: s for s in status_json(platform)["services"]}
    assert report["crasher"]["state"] == "FATAL"
    assert report["flaky"]["state"] == "STOPPED"
    for name, pid in before.items():
        assert report[name]["state"] == "RUNNING" and report[name]["pid"] == pid, report[name]
    text = platform.lakewire("status", check=False)
    assert text.returncode == 3
    assert "crash-loop-marker" in text.stdout and "FATAL" in text.stdout


def test_down_leaves_no_process_and_no_port(platform: Platform) -> None:
    groups = [p for p in pids(platform).values() if p]
    platform.lakewire("down")
    from lakewire.supervisor import group_members, port_free

    assert {g: group_members(g) for g in groups} == {g: [] for g in groups}

    for var in ("LAKEWIRE_NATS_PORT", "LAKEWIRE_STORAGE_PORT", "LAKEWIRE_DAGSTER_PORT"):
        assert port_free("127.0.0.1", int(platform.env[var])), var
    status = platform.lakewire("status", check=False)
    assert status.returncode == 3
