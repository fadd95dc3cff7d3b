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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from lakehouse.settings import Settings
from lakewire.health import outbox_health
from storage_service.statedb import move_aside
from tests.faults import (
    RESTART_DEADLINE,
    Account,
    Clients,
    account,
    api_key,
    kill_and_wait,
    probe_recovery,
    record,
    services,
    sizes,
    steady,
    supervisorctl,
    table_counts,
    wait_running,
)
from tests.helpers import Platform, csv_bytes, wait_for

pytestmark = pytest.mark.faults
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
on_platform = pytest.mark.platform


def _settings(platform: Platform) -> Settings:
    return Settings(data_dir=platform.data_dir)


def _outbox_events(platform: Platform) -> int:
    return int(outbox_health(_settings(platform)).get("events", 0))


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


async def _delete_stream(settings: Settings) -> None:
    nc = await nats.connect(settings.effective_nats_url)
    try:
        await nc.jetstream().delete_stream(settings.stream_name)
    finally:
        await nc.close()


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
        asyncio.run(_delete_stream(settings))
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
def test_metrics_show_the_sensor_lag_and_run_outcomes_per_table(platform: Platform) -> None:
    """``/metrics`` scraped during a burst: the stream tail, the sensor's cursor and lag, and
    the finished runs of the burst's table, all moving as the burst lands."""
    from prometheus_client.parser import text_string_to_metric_families

    headers = {"Authorization": f"Bearer {api_key(platform)}"}
    table = "delta.default.fault_metrics"

    def scrape() -> Samples:
        text = httpx.get(f"{platform.storage_url}/metrics", headers=headers, timeout=30).text
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

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
