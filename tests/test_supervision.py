"""The embedded platform heals itself (issue 17): supervisord restarts a killed service, an
idempotent `lakewire up`, a crash loop that ends FATAL and is reported, a dead run worker whose
run is failed by run monitoring, and no acknowledged object lost or doubled through it all.

All tests share one platform (it takes ~30 s to start). Deadlines are generous; the restart
times are printed (run with -s) and belong to bench/reliability, not to assertions here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import BIN, Platform, csv_bytes, platform_env, wait_for

pytestmark = pytest.mark.platform

ROWS = 5
TABLE = "delta.default.faults"
RESTART_DEADLINE = 60.0


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("supervised")
    p = Platform(data_dir, platform_env(data_dir))
    p.lakewire("up", "--detach")
    try:
        yield p
    finally:
        p.lakewire("down", check=False)


def _status(platform: Platform, **env: str) -> dict[str, Any]:
    proc = subprocess.run(
        [str(BIN / "lakewire"), "status", "--json"],
        env={**platform.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode in (0, 3), proc.stderr
    return json.loads(proc.stdout)


def _services(platform: Platform) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in _status(platform)["services"]}


def _pids(platform: Platform) -> dict[str, int]:
    return {n: s["pid"] for n, s in _services(platform).items()}


def _supervisorctl(platform: Platform, *args: str) -> str:
    conf = platform.data_dir / "state" / "supervisord.conf"
    proc = subprocess.run(
        [str(BIN / "supervisorctl"), "-c", str(conf), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.stdout + proc.stderr


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
    before = _pids(platform)
    proc = platform.lakewire("up", "--detach")
    assert "already up" in proc.stdout, proc.stdout
    assert _pids(platform) == before


def test_up_starts_just_the_stopped_service(platform: Platform) -> None:
    before = _pids(platform)
    out = _supervisorctl(platform, "stop", "storage-service")
    assert "stopped" in out, out
    assert _services(platform)["storage-service"]["state"] == "STOPPED"
    proc = platform.lakewire("up", "--detach")
    assert "started storage-service" in proc.stdout, proc.stdout
    after = _pids(platform)
    assert after["storage-service"] != before["storage-service"]
    assert {n: p for n, p in after.items() if n != "storage-service"} == {
        n: p for n, p in before.items() if n != "storage-service"
    }
    assert httpx.get(f"{platform.storage_url}/healthz", timeout=5).status_code == 200


def _api_key(platform: Platform) -> str:
    return platform.lakewire("status", "--show-key").stdout.split("API key: ")[1].split()[0]


class Clients:
    """A few clients putting small CSVs through the API until told to stop, retrying a put
    until it is acknowledged (201); only acknowledged keys are expected in the table."""

    def __init__(self, platform: Platform, n: int = 3) -> None:
        self.platform = platform
        self.key = _api_key(platform)
        self.acked: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(n)]

    def _run(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        i = 0
        while not self.stop.is_set():
            key = f"faults/c{n}-{i:04d}.csv"
            body = csv_bytes(ROWS, start=(n * 100_000 + i) * ROWS)
            while not self.stop.is_set():
                try:
                    resp = httpx.put(
                        f"{self.platform.storage_url}/api/buckets/landing/objects/{key}",
                        content=body,
                        headers=headers,
                        timeout=10,
                    )
                except httpx.HTTPError:
                    time.sleep(0.3)
                    continue
                if resp.status_code == 201:
                    with self.lock:
                        self.acked.append(key)
                    break
                time.sleep(0.3)
            i += 1
            time.sleep(0.2)

    def __enter__(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def _ready(platform: Platform, name: str) -> bool:
    if name == "nats-server":
        import socket

        port = int(platform.env["LAKEWIRE_NATS_PORT"])
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
        except OSError:
            return False
        return True
    if name == "storage-service":
        try:
            return httpx.get(f"{platform.storage_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
    return True  # the daemon: RUNNING under supervisord (past its start-up seconds)


def _kill_and_wait(platform: Platform, name: str) -> float:
    old = _services(platform)[name]
    os.kill(old["pid"], signal.SIGKILL)
    t0 = time.monotonic()

    def back() -> bool:
        s = _services(platform)[name]
        return s["state"] == "RUNNING" and s["pid"] != old["pid"] and _ready(platform, name)

    wait_for(back, RESTART_DEADLINE, f"{name} restarted by the supervisor", interval=0.1)
    took = time.monotonic() - t0
    now = _services(platform)[name]
    assert now["restarts"] >= old["restarts"] + 1, now
    assert "SIGKILL" in (now["last_exit"] or ""), now
    return took


def test_killed_services_come_back_and_every_acknowledged_object_lands_once(
    platform: Platform,
) -> None:
    took: dict[str, float] = {}
    with Clients(platform) as clients:
        time.sleep(3)
        for name in ("nats-server", "storage-service", "dagster-daemon"):
            took[name] = _kill_and_wait(platform, name)
            time.sleep(3)  # objects keep arriving between the faults
    acked = set(clients.acked)
    assert len(acked) >= 20, len(acked)
    expected = len(acked) * ROWS
    wait_for(lambda: (platform.count(TABLE) or 0) >= expected, 180, f"{expected} rows", interval=2)
    wait_for(lambda: platform.settled_runs(), 120, "runs to settle", 1)
    rows = platform.sql(
        f"SELECT _source_uri AS uri, count(*) AS n FROM {TABLE} GROUP BY 1 ORDER BY 1"
    )
    counts = {r["uri"].removeprefix("s3://landing/"): r["n"] for r in rows}
    # Every acknowledged object is there exactly once; an unacknowledged put (cut off by the
    # storage service's death) may or may not have landed, but never twice.
    assert all(counts.get(k) == ROWS for k in acked), {
        k: counts.get(k) for k in acked if counts.get(k) != ROWS
    }
    assert all(n == ROWS for n in counts.values()), counts
    print(f"\nrestart (kill -> running and ready) seconds: {took}; {len(acked)} objects acked")


def _instance(platform: Platform) -> Any:
    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = str(platform.data_dir / "dagster")
    try:
        return DagsterInstance.get()
    finally:
        del os.environ["DAGSTER_HOME"]


def test_a_run_worker_killed_with_its_code_server_is_failed_by_run_monitoring(
    platform: Platform,
) -> None:
    """The worker dies with the code server that launched it (as when the daemon's whole
    process group is killed), so nobody is left to report the run: the launcher's worker
    health check must, and the run is failed instead of staying STARTED. Its object is then
    ingested exactly once by the landing reconciliation (the schedule's job, run here by hand)."""
    from dagster import DagsterRunStatus

    from lakewire.run_launcher import LocalRunLauncher

    instance = _instance(platform)
    assert isinstance(instance.run_launcher, LocalRunLauncher)
    table, big_rows = "delta.default.workers", 1_500_000  # a run that lasts a few seconds
    before = {r.run_id for r in instance.get_runs()}
    resp = httpx.put(
        f"{platform.storage_url}/api/buckets/landing/objects/workers/big.csv",
        content=csv_bytes(big_rows, start=10_000_000),
        headers={"Authorization": f"Bearer {_api_key(platform)}"},
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
    before = _pids(platform)
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
    report = {s["name"]: s for s in _status(platform, LAKEWIRE_EXTRA_SERVICES=crasher)["services"]}
    crashed = report["crasher"]
    assert crashed["state"] == "FATAL"
    assert crashed["restarts"] == 3  # supervisord's startretries, then it gives up
    assert "exit status 3" in crashed["last_exit"] and "gave up" in crashed["last_exit"]
    assert any("crash-loop-marker" in line for line in crashed["last_log_lines"])

    def flaky_stopped() -> dict[str, Any] | None:
        row = {s["name"]: s for s in _status(platform)["services"]}["flaky"]
        return row if row["state"] == "STOPPED" else None

    flaky = wait_for(flaky_stopped, 90, "the crash watch to stop flaky", 1)
    assert flaky["crash_loop"] and "crash loop: 5 unexpected exits" in flaky["last_exit"]
    assert "exit status 4" in flaky["last_exit"]
    assert any("flaky-marker" in line for line in flaky["last_log_lines"])
    # They stay down (no silent restarts) and every other service kept running untouched.
    time.sleep(5)
    report = {s["name"]: s for s in _status(platform)["services"]}
    assert report["crasher"]["state"] == "FATAL"
    assert report["flaky"]["state"] == "STOPPED"
    for name, pid in before.items():
        assert report[name]["state"] == "RUNNING" and report[name]["pid"] == pid, report[name]
    text = platform.lakewire("status", check=False)
    assert text.returncode == 3
    assert "crash-loop-marker" in text.stdout and "FATAL" in text.stdout


def test_down_leaves_no_process_and_no_port(platform: Platform) -> None:
    groups = [p for p in _pids(platform).values() if p]
    platform.lakewire("down")
    from lakewire.supervisor import group_members, port_free

    assert {g: group_members(g) for g in groups} == {g: [] for g in groups}

    for var in ("LAKEWIRE_NATS_PORT", "LAKEWIRE_STORAGE_PORT", "LAKEWIRE_DAGSTER_PORT"):
        assert port_free("127.0.0.1", int(platform.env[var])), var
    status = platform.lakewire("status", check=False)
    assert status.returncode == 3
