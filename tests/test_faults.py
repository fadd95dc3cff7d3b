"""The fault-injection suite (issue 15): the embedded platform takes a steady stream of objects
from several clients (mixed sizes, a few empty ones that must be quarantined) while one part
of it is broken on purpose; afterwards every acknowledged object is accounted for in its table:
lost = 0, doubled = 0, quarantined only where the object was bad.

One platform for the module (the planned outages go through supervisord's own stop/start, the
crashes are SIGKILLs); each fault writes into a table of its own. Sizes: ``tests/faults.py``.
The recovery figures go to ``bench/results`` (and ``docs/reliability.md`` after
``make reliability``); nothing here asserts a time but generous deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from lakehouse.failpoints import ENV as FAILPOINTS_ENV
from lakehouse.failpoints import arm_file
from lakehouse.settings import Settings
from lakewire.health import outbox_health
from storage_service.events import BucketEvent, parse_message
from storage_service.statedb import move_aside
from tests.faults import (
    RESTART_DEADLINE,
    Account,
    Clients,
    account,
    api_key,
    fill_disk,
    kill_and_wait,
    mount_small_disk,
    probe_recovery,
    record,
    services,
    sizes,
    status_json,
    steady,
    supervisorctl,
    table_counts,
    unmount,
    wait_running,
)
from tests.helpers import Platform, csv_bytes, delete_stream, platform_env, wait_for

pytestmark = pytest.mark.faults
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
on_platform = pytest.mark.platform
# The points the module's platform may be killed at (each fires once per arm file).
PUBLISHED_NOT_DELETED = "outbox.after_publish"
COMMITTED_NOT_FINISHED = "delta.after_commit"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The conftest's platform, on a small object disk of its own (a tmpfs, where mounting is
    permitted) and with the suite's failpoints named (inert until a test arms one)."""
    data_dir = tmp_path_factory.mktemp("platform")
    disk = data_dir / "storage"
    mounted = mount_small_disk(disk)
    env = platform_env(
        data_dir, **{FAILPOINTS_ENV: f"{PUBLISHED_NOT_DELETED},{COMMITTED_NOT_FINISHED}"}
    )
    p = Platform(data_dir, env)
    try:
        p.lakewire("up", "--detach")
        yield p
    finally:
        p.lakewire("down", check=False)
        if mounted:
            unmount(disk)


def _settings(platform: Platform) -> Settings:
    return Settings(data_dir=platform.data_dir)


def _outbox_events(platform: Platform) -> int:
    return int(outbox_health(_settings(platform)).get("events", 0))


def _arm(platform: Platform, point: str) -> Path:
    arm = arm_file(platform.data_dir / "state", point)
    arm.parent.mkdir(parents=True, exist_ok=True)
    arm.touch()
    return arm


def _scrape(platform: Platform) -> Samples:
    """The storage service's ``/metrics``, sample by name and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    headers = {"Authorization": f"Bearer {api_key(platform)}"}
    text = httpx.get(f"{platform.storage_url}/metrics", headers=headers, timeout=30).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _check(result: Account) -> None:
    print(f"\n{result.fault}: {result}")
    assert result.clean, result


@on_platform
def test_services_killed_in_turn_lose_and_double_nothing(platform: Platform) -> None:
    """nats-server, the storage service, the Dagster daemon and the dispatcher SIGKILLed one
    after another (issue 16's harness): supervisord brings each back and the stream keeps
    landing."""
    took: dict[str, float] = {}
    with Clients(platform, "fault_kills") as clients, steady(clients):
        for name in ("nats-server", "storage-service", "dagster-daemon", "dispatch"):
            killed = time.monotonic()
            took[name] = kill_and_wait(platform, name)
            clients.wait_more(2)  # objects keep arriving between the faults
        recovery = probe_recovery(platform, "fault_kills", killed)
    print(f"\nrestart (kill -> running and ready) seconds: {took}")
    _check(
        account(
            platform,
            "SIGKILL nats, storage, daemon, dispatcher in turn",
            "fault_kills",
            dict(clients.acked),
            recovery,
        )
    )


@on_platform
def test_nats_stopped_events_wait_in_the_outbox(platform: Platform) -> None:
    with Clients(platform, "fault_nats") as clients, steady(clients):
        out = supervisorctl(platform, "stop", "nats-server")
        assert "stopped" in out, out
        stopped = time.monotonic()
        # Puts are still acknowledged; their events wait in the outbox.
        wait_for(lambda: _outbox_events(platform) > 0, 60, "events waiting in the outbox", 0.2)
        clients.wait_more(2)
        time.sleep(max(0.0, sizes().outage_seconds - (time.monotonic() - stopped)))
        out = supervisorctl(platform, "start", "nats-server")
        assert "started" in out, out
        healed = time.monotonic()
        wait_for(lambda: _outbox_events(platform) == 0, 120, "the outbox to drain", 0.2)
        recovery = probe_recovery(platform, "fault_nats", healed)
    _check(
        account(
            platform,
            f"nats-server stopped {sizes().outage_seconds:.0f} s",
            "fault_nats",
            dict(clients.acked),
            recovery,
        )
    )


def _slow_body(sent: threading.Event, stop: threading.Event) -> Iterator[bytes]:
    """A large CSV trickled out, so the service is still receiving it when it is killed."""
    yield b"id,amount,name\n"
    for i in range(20_000):
        if stop.is_set():
            return
        yield b"".join(f"{j},{j * 1.5},name {j}\n".encode() for j in range(i * 100, i * 100 + 100))
        if i == 20:
            sent.set()
        time.sleep(0.01)


@on_platform
def test_storage_service_killed_mid_upload(platform: Platform) -> None:
    """The upload cut off by the kill is never acknowledged, never visible and never ingested;
    everything acknowledged around it lands once."""
    partial = "fault_storage/cut-off.csv"
    url = f"{platform.storage_url}/api/buckets/landing/objects/{partial}"
    headers = {"Authorization": f"Bearer {api_key(platform)}"}
    sent, stop = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def upload() -> None:
        try:
            resp = httpx.put(url, content=_slow_body(sent, stop), headers=headers, timeout=120)
            outcome["status"] = resp.status_code
        except httpx.HTTPError as exc:
            outcome["error"] = repr(exc)

    with Clients(platform, "fault_storage") as clients, steady(clients):
        uploader = threading.Thread(target=upload)
        uploader.start()
        wait_for(sent.is_set, 60, "the large upload to be under way", 0.05)
        killed = time.monotonic()
        took = kill_and_wait(platform, "storage-service")
        stop.set()
        uploader.join(60)
        recovery = probe_recovery(platform, "fault_storage", killed)
    print(f"\nstorage service back in {took:.1f} s; cut-off upload: {outcome}")
    assert outcome.get("status") != 201, outcome
    assert httpx.head(url, headers=headers, timeout=10).status_code == 404
    # No rows of the cut-off object either: account() counts rows of objects never acked.
    _check(
        account(
            platform,
            "storage service SIGKILLed mid-upload",
            "fault_storage",
            dict(clients.acked),
            recovery,
        )
    )


@on_platform
def test_daemon_and_run_worker_killed_mid_run(platform: Platform) -> None:
    """The daemon and the worker of a run that is ingesting die together: run monitoring fails
    the run, and the table's next run drains its objects again (no reconcile needed)."""
    from dagster import DagsterRunStatus, RunsFilter

    instance = platform.dagster_instance()
    table = "delta.default.fault_daemon"
    with Clients(platform, "fault_daemon") as clients, steady(clients):

        def started() -> Any:
            runs = instance.get_runs(
                filters=RunsFilter(
                    tags={"lakewire/table": table}, statuses=[DagsterRunStatus.STARTED]
                ),
                limit=1,
            )
            return runs[0] if runs and instance.run_launcher._worker_pid(runs[0]) else None

        run = wait_for(started, 120, "a run of the table with its worker up", 0.05)
        worker = instance.run_launcher._worker_pid(run)
        killed = time.monotonic()
        with contextlib.suppress(ProcessLookupError):  # it may have just finished
            os.kill(worker, signal.SIGKILL)
        took = kill_and_wait(platform, "dagster-daemon")
        recovery = probe_recovery(platform, "fault_daemon", killed)
    ended = wait_for(
        lambda: (
            (r := instance.get_run_by_id(run.run_id))
            and r.status.value not in ("STARTED", "STARTING", "QUEUED", "NOT_STARTED")
            and r
        ),
        120,
        "the killed run to end",
        1,
    )
    print(f"\ndaemon back in {took:.1f} s; killed run ended {ended.status.value}")
    _check(
        account(
            platform,
            "Dagster daemon + run worker SIGKILLed mid-run",
            "fault_daemon",
            dict(clients.acked),
            recovery,
        )
    )


async def _stream_tail(settings: Settings) -> int | None:
    nc = await nats.connect(settings.effective_nats_url)
    try:
        info = await nc.jetstream().stream_info(settings.stream_name)
        return int(info.state.last_seq)
    except nats.js.errors.NotFoundError:
        return None
    finally:
        await nc.close()


@on_platform
def test_stream_deleted_while_running(platform: Platform) -> None:
    """The JetStream stream is deleted under a running platform: the publisher recreates it,
    the sensor reads the new stream from its start, and a reconcile pass re-emits the events
    that went with the old one."""
    settings = Settings(data_dir=platform.data_dir, nats_url=platform.nats_url)
    table = "delta.default.fault_stream"
    with Clients(platform, "fault_stream") as clients, steady(clients):
        # The table has ingested (and drained) something before the stream goes.
        wait_for(lambda: table_counts(platform, "fault_stream"), 120, f"rows in {table}", 0.5)
        delete_stream(settings)
        deleted = time.monotonic()
        wait_for(lambda: asyncio.run(_stream_tail(settings)), 60, "the stream recreated", 0.2)
        recovery = probe_recovery(platform, "fault_stream", deleted)
    platform.lakewire("reconcile", "--grace", "0")
    _check(
        account(
            platform,
            "JetStream stream deleted + reconcile",
            "fault_stream",
            dict(clients.acked),
            recovery,
        )
    )


@on_platform
def test_damaged_outbox_refuses_to_start_and_damaged_index_is_rebuilt(
    platform: Platform,
) -> None:
    """With events waiting in the outbox, both state files are overwritten with garbage: the
    service refuses to start and says why (never an empty outbox); with the outbox moved aside
    as the message says, it starts, rebuilds the index from the folders, and a reconcile pass
    re-emits what the damaged outbox held."""
    state = platform.data_dir / "state"
    with Clients(platform, "fault_state") as clients, steady(clients):
        assert "stopped" in supervisorctl(platform, "stop", "nats-server")
        wait_for(lambda: _outbox_events(platform) > 0, 60, "events waiting in the outbox", 0.2)
        assert "stopped" in supervisorctl(platform, "stop", "storage-service")
        broken = time.monotonic()
        for name in ("outbox.db", "index.db"):
            for suffix in ("-wal", "-shm"):
                (state / (name + suffix)).unlink(missing_ok=True)
            (state / name).write_bytes(b"not a database " * 300)
        supervisorctl(platform, "start", "storage-service")

        def refused() -> dict[str, Any] | None:
            svc = services(platform)["storage-service"]
            return svc if svc["state"] in ("EXITED", "FATAL") else None

        svc = wait_for(refused, RESTART_DEADLINE, "the storage service to refuse", 0.5)
        assert "exit status 78" in svc["last_exit"], svc  # EX_CONFIG: not restarted forever
        log = "\n".join(svc.get("last_log_lines") or [])
        if "will not start on it" not in log:  # last_log_lines may lag one poll behind
            log = (platform.data_dir / "logs" / "storage-service.log").read_text()
        assert "outbox.db is unreadable" in log and "lakewire reconcile" in log, log[-2000:]
        # The operator's remedy, as the message gives it.
        move_aside(state / "outbox.db", "test")
        assert "started" in supervisorctl(platform, "start", "nats-server")
        assert "started" in supervisorctl(platform, "start", "storage-service")
        wait_running(platform, "storage-service")
        recovery = probe_recovery(platform, "fault_state", broken)
    assert list(state.glob("index.db.corrupt-*")), "the damaged index was not kept aside"
    platform.lakewire("reconcile", "--grace", "0")
    _check(
        account(
            platform,
            "outbox + index overwritten with garbage",
            "fault_state",
            dict(clients.acked),
            recovery,
        )
    )


@on_platform
def test_data_disk_full_then_freed(platform: Platform) -> None:
    """The object disk fills while clients put: each write is refused with a 507 and its
    reason (never a 500 or a hang), what was acknowledged before stays and lands, and once
    space is freed writes and ingestion go on without a restart."""
    disk = platform.data_dir / "storage"
    if not os.path.ismount(disk):
        # Root can mount one (CI runs as root): there a missing disk is a failure, not a skip.
        assert os.geteuid() != 0, f"mounting a tmpfs on {disk} failed although running as root"
        pytest.skip("mounting a size-limited tmpfs is not permitted here (needs root)")
    filler = disk / ".disk-filler"
    url = f"{platform.storage_url}/api/buckets/landing/objects/fault_disk_refused/x.csv"
    headers = {"Authorization": f"Bearer {api_key(platform)}"}
    before = services(platform)["storage-service"]
    with Clients(platform, "fault_disk") as clients, steady(clients):
        held = fill_disk(filler)
        full = time.monotonic()
        resp = httpx.put(url, content=csv_bytes(2000), headers=headers, timeout=30)
        assert resp.status_code == 507, (resp.status_code, resp.text)
        assert "no space left" in resp.json()["detail"] and resp.headers["retry-after"]
        disk_report = status_json(platform)["health"]["disk"]["storage"]
        assert disk_report["path"] == str(disk) and disk_report["free_bytes"] < 1024**2
        acked_while_full = clients.count()
        time.sleep(max(0.0, sizes().outage_seconds - (time.monotonic() - full)))
        filler.unlink()
        freed = time.monotonic()
        clients.wait_more(1, timeout=RESTART_DEADLINE)
        writes_back = time.monotonic() - freed
        recovery = probe_recovery(platform, "fault_disk", freed)
    after = services(platform)["storage-service"]
    assert after["pid"] == before["pid"], "the storage service was restarted"
    assert httpx.head(url, headers=headers, timeout=10).status_code == 404
    print(
        f"\ndisk full ({held / 1e6:.0f} MB filler) {sizes().outage_seconds:.0f} s; "
        f"{acked_while_full} acked before; writes back {writes_back:.1f} s after freeing"
    )
    _check(
        account(
            platform,
            f"object disk full {sizes().outage_seconds:.0f} s, then freed",
            "fault_disk",
            dict(clients.acked),
            recovery,
        )
    )


async def _stream_events(settings: Settings, prefix: str) -> list[BucketEvent]:
    """The stream's created events of ``landing/<prefix>...`` keys, in stream order."""
    from nats.js.api import DeliverPolicy

    nc = await nats.connect(settings.effective_nats_url)
    found: list[BucketEvent] = []
    try:
        js = nc.jetstream()
        tail = (await js.stream_info(settings.stream_name)).state.last_seq
        sub = await js.subscribe(
            f"{settings.subject_prefix}.>",
            stream=settings.stream_name,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        seq = 0
        while seq < tail:
            msg = await sub.next_msg(timeout=10)
            seq = msg.metadata.sequence.stream
            with contextlib.suppress(ValueError):
                found += [
                    e
                    for e in parse_message(msg.data, stream_seq=seq)
                    if e.key.startswith(prefix) and e.is_created
                ]
    finally:
        await nc.close()
    return found


@on_platform
def test_storage_service_killed_between_publish_and_outbox_delete(platform: Platform) -> None:
    """A failpoint SIGKILLs the storage service right after JetStream acked a batch and before
    the outbox forgot it: the restarted service publishes the batch again with the same
    ``Nats-Msg-Id``, JetStream drops the copies, and every object lands once."""
    settings = Settings(data_dir=platform.data_dir, nats_url=platform.nats_url)
    old = services(platform)["storage-service"]
    with Clients(platform, "fault_publish") as clients, steady(clients):
        arm = _arm(platform, PUBLISHED_NOT_DELETED)
        wait_for(lambda: not arm.exists(), 60, "the publish failpoint to fire", 0.05)
        killed = time.monotonic()
        wait_running(platform, "storage-service", old["pid"])
        took = time.monotonic() - killed
        recovery = probe_recovery(platform, "fault_publish", killed)
    now = services(platform)["storage-service"]
    assert now["restarts"] >= old["restarts"] + 1 and "SIGKILL" in (now["last_exit"] or ""), now
    wait_for(lambda: _outbox_events(platform) == 0, 120, "the outbox to drain", 0.2)
    events = asyncio.run(_stream_events(settings, "fault_publish/"))
    print(f"\nstorage service back in {took:.1f} s; {len(events)} events in the stream")
    assert set(clients.acked) <= {e.key for e in events}, "an acknowledged put has no event"
    # The batch published before the kill went out again after it, with the same message ids
    # (bucket/key/sequencer): JetStream kept one copy of each. (A key may have two events: a
    # put cut off by the kill before its answer was retried by its client, a new version.)
    ids = Counter(e.msg_id for e in events)
    assert all(n == 1 for n in ids.values()), {i: n for i, n in ids.items() if n > 1}
    assert _scrape(platform).get(("lakewire_events_duplicates_total", frozenset()), 0) >= 1
    _check(
        account(
            platform,
            "storage service SIGKILLed between publish and outbox delete",
            "fault_publish",
            dict(clients.acked),
            recovery,
        )
    )


@on_platform
def test_run_worker_killed_between_commit_and_run_end(platform: Platform) -> None:
    """A failpoint SIGKILLs a run worker the moment its Delta commit (rows and ledger entries)
    has landed, before the run records anything: the run is failed by the worker health check,
    the table's next run takes the same objects again, and the ledger makes it write none of
    them twice."""
    from dagster import DagsterRunStatus, RunsFilter

    instance = platform.dagster_instance()
    table = "delta.default.fault_commit"
    with Clients(platform, "fault_commit") as clients, steady(clients):
        arm = _arm(platform, COMMITTED_NOT_FINISHED)
        wait_for(lambda: not arm.exists(), 120, "the commit failpoint to fire", 0.05)
        killed = time.monotonic()

        def failed() -> Any:
            runs = instance.get_runs(
                filters=RunsFilter(
                    tags={"lakewire/table": table}, statuses=[DagsterRunStatus.FAILURE]
                ),
                limit=1,
            )
            return runs[0] if runs else None

        run = wait_for(failed, 120, "the killed run to be failed", 0.5)
        recovery = probe_recovery(platform, "fault_commit", killed)
    print(
        f"\nrun {run.run_id} killed after its commit; failed {time.monotonic() - killed:.1f} s on"
    )
    _check(
        account(
            platform,
            "run worker SIGKILLed between its commit and the run's end",
            "fault_commit",
            dict(clients.acked),
            recovery,
        )
    )


@on_platform
def test_metrics_show_the_sensor_lag_and_run_outcomes_per_table(platform: Platform) -> None:
    """``/metrics`` scraped during a burst: the stream tail, the sensor's cursor and lag, and
    the finished runs of the burst's table, all moving as the burst lands."""
    table = "delta.default.fault_metrics"

    def scrape() -> Samples:
        return _scrape(platform)

    def runs(samples: Samples) -> float:
        key = frozenset({("table", table), ("status", "SUCCESS")})
        return samples.get(("lakewire_ingestion_runs_total", key), 0.0)

    before = scrape()
    with Clients(platform, "fault_metrics") as clients:
        clients.wait_more(4)
        during = scrape()

    def counted() -> Samples | None:
        samples = scrape()
        return samples if runs(samples) >= 1 else None

    after = wait_for(counted, 120, "a run counted", 1)
    tail: tuple[str, frozenset[tuple[str, str]]] = ("lakewire_stream_tail", frozenset())
    assert during[tail] > before[tail]
    for samples in (during, after):
        assert samples[("lakewire_pipeline_up", frozenset({("part", "dagster")}))] == 1
        lag = samples[("lakewire_sensor_lag_events", frozenset())]
        cursor = samples[("lakewire_sensor_cursor", frozenset())]
        assert lag == max(0, samples[tail] - cursor)
    assert runs(before) == 0 and runs(after) >= 1


@on_platform
def test_storage_service_logs_json_lines_with_request_ids(platform: Platform) -> None:
    """Every line of the service's log is one JSON object; a request's lines carry its id (the
    caller's ``X-Request-Id``, echoed back) and the object it names."""
    import json

    rid = f"fault-suite-{time.monotonic_ns()}"
    resp = httpx.put(
        f"{platform.storage_url}/api/buckets/landing/objects/fault_logs/a%20b.csv",
        content=csv_bytes(2),
        headers={"Authorization": f"Bearer {api_key(platform)}", "X-Request-Id": rid},
        timeout=30,
    )
    assert resp.status_code == 201 and resp.headers["x-request-id"] == rid
    log = platform.data_dir / "logs" / "storage-service.log"

    def logged() -> dict[str, Any] | None:
        lines = [json.loads(ln) for ln in log.read_text().splitlines() if ln.startswith("{")]
        mine = [r for r in lines if r.get("request_id") == rid]
        # The access line; the audit record of the same request carries the same id.
        return next((r for r in mine if r.get("msg") == "request"), None)

    line = wait_for(logged, 30, "the request's log line", 0.2)
    assert line["object"] == "landing/fault_logs/a b.csv"
    assert line["status"] == 201 and line["method"] == "PUT" and line["duration_ms"] >= 0


# Lakewire's own processes, whose every line is one JSON object (Dagster's webserver and daemon
# write their own lines in Dagster's JSON format, ``--log-format json``).
JSON_LOGS = ("storage-service", "dispatch", "run-workers", "crashwatch")
LINE_FIELDS = {"ts", "level", "logger", "msg"}


def _log_ends(logs: Path) -> dict[str, int]:
    return {name: (logs / f"{name}.log").stat().st_size for name in JSON_LOGS}


def _json_lines(path: Path, start: int = 0) -> list[dict[str, Any]]:
    """The log's lines from byte ``start`` on (a line cut there is left out)."""
    import json

    data = path.read_bytes()
    if start > len(data):  # rotated since: the new file is all this test's
        start = 0
    if start and data[start - 1 : start] != b"\n":
        start = data.find(b"\n", start) + 1 or len(data)
    lines = [ln for ln in data[start:].decode().splitlines() if ln.strip()]
    records = []
    for n, ln in enumerate(lines, 1):
        try:
            records.append(json.loads(ln))
        except ValueError:
            raise AssertionError(f"{path.name}:{n} is not JSON: {ln[:300]}") from None
    return records


@on_platform
def test_every_lakewire_process_logs_json_lines(platform: Platform) -> None:
    """After objects went through the event path, every line of each Lakewire process's log
    is one JSON object with its time, level, logger and message; the dispatcher's line for a
    run names the run and its table, and so do the run worker's Dagster events of that run;
    the daemon's own lines are JSON too (Dagster's format). Only this test's lines are read:
    the module's platform went through other faults first, and a native library's panic on the
    full disk writes its own text to stderr."""
    logs = platform.data_dir / "logs"
    ends = _log_ends(logs)
    headers = {"Authorization": f"Bearer {api_key(platform)}"}
    for n in range(2):
        resp = httpx.put(
            f"{platform.storage_url}/api/buckets/landing/objects/fault_jsonlogs/{n}.csv",
            content=csv_bytes(3, start=n * 3),
            headers=headers,
            timeout=30,
        )
        assert resp.status_code == 201
    wait_for(lambda: sum(table_counts(platform, "fault_jsonlogs").values()) == 6, 120, "rows", 0.5)
    wait_for(platform.settled_runs, 120, "runs to settle", 1)
    table = "delta.default.fault_jsonlogs"
    records = {name: _json_lines(logs / f"{name}.log", ends[name]) for name in JSON_LOGS}
    for name, lines in records.items():
        missing = [r for r in lines if not r.keys() >= LINE_FIELDS]
        assert not missing, (name, missing[:3])
    runs = {r.get("run_id") for r in records["run-workers"] if r.get("table") == table}
    assert runs - {None}, "no run worker line names a run of the table"
    events = {r.get("event") for r in records["run-workers"] if r.get("run_id") in runs}
    assert "RUN_SUCCESS" in events or "STEP_SUCCESS" in events, events
    asked = [r for r in records["dispatch"] if r["msg"] == "run requested"]
    assert all(r["run_id"] and r["table"] for r in asked), asked[:3]
    # The daemon's own lines are Dagster's JSON (``--log-format json``; its fields, not ours).
    daemon = _json_lines_where_json(logs / "dagster-daemon.log")
    assert any(r.get("logger") == "dagster.daemon.SensorDaemon" for r in daemon)


def _json_lines_where_json(path: Path) -> list[dict[str, Any]]:
    import json

    out = []
    for ln in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            if isinstance(rec := json.loads(ln), dict):
                out.append(rec)
    return out


def test_four_ingestion_processes_on_one_delta_table(tmp_path: Path) -> None:
    """Four processes ingest the same objects into one Delta table at once, each in its own
    order: delta-rs's optimistic concurrency makes the losers of each race retry from the
    ledger, so every object is in the table once and no commit is lost."""
    from deltalake import DeltaTable

    from lakehouse.objectstore import open_object_store

    objects, rows = 40, 25
    settings = Settings(data_dir=tmp_path / "data")
    store = open_object_store(settings)
    for bucket in ("landing", "lake"):
        store.create_bucket(bucket)
    for i in range(objects):
        store.put("landing", f"writers/f{i:03d}.csv", csv_bytes(rows, start=i * rows))
    go = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEWIRE_")}
    root = Path(__file__).resolve().parent.parent
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.ingest_worker",
                str(settings.data_dir),
                str(w),
                str(objects),
                str(go),
            ],
            cwd=root,
            env=env,
        )
        for w in range(4)
    ]
    go.touch()
    t0 = time.monotonic()
    codes = [p.wait(240) for p in procs]
    took = time.monotonic() - t0
    assert codes == [0, 0, 0, 0]
    import polars as pl

    uri = str(settings.data_dir / "storage" / "lake" / "default" / "writers")
    frame = pl.read_delta(uri)
    per_object = dict(frame.group_by("_source_uri").len().iter_rows())
    want = {f"s3://landing/writers/f{i:03d}.csv" for i in range(objects)}
    lost = len(want - set(per_object))
    doubled = sum(1 for n in per_object.values() if n > rows)
    commits = DeltaTable(uri).version()
    print(f"\n4 writers, {objects} objects: {commits + 1} table versions in {took:.1f} s")
    result = Account("4 ingestion processes on one Delta table", objects, lost, doubled, 0, None)
    record(result)
    assert (lost, doubled) == (0, 0), per_object
    assert set(per_object) == want and all(n == rows for n in per_object.values())


def test_the_reliability_block_is_rewritten_and_the_prose_around_it_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from bench import reliability_page
    from bench.pages import END

    page = tmp_path / "reliability.md"
    page.write_text(f"# R\n\nprose before\n\n{reliability_page.START}\nold\n{END}\n\nprose after\n")
    row = {
        "fault": "f",
        "objects": 3,
        "lost": 0,
        "doubled": 0,
        "quarantined": 1,
        "recovery_s": 2.5,
        "problems": {},
        "size": "full",
        "measured_at": "2026-11-30T08:00:00+00:00",
    }
    results = tmp_path / "reliability.json"
    results.write_text(json.dumps({"faults": {"f": row}}))
    monkeypatch.setattr(reliability_page, "PAGE", page)
    reliability_page.regenerate(results)
    text = page.read_text()
    assert text.startswith("# R\n\nprose before\n") and text.endswith("\n\nprose after\n")
    assert "| f | 3 | 0 | 0 | 1 | 2.5 | - |" in text and "\nold\n" not in text
