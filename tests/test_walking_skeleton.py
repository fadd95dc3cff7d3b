"""The whole path, as a user drives it: `lakewire up`, `put`, Dagster ingests, `sql` answers."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from pathlib import Path

import nats
import pytest

from tests.helpers import Platform, platform_env, wait_for, write_csv

pytestmark = pytest.mark.platform


def _successful_runs(platform: Platform, expected: int) -> list[dict]:
    def check() -> list[dict] | None:
        runs = platform.settled_runs()
        if runs is None or len(runs) < expected:
            return None
        return runs

    runs = wait_for(check, timeout=60, what=f"{expected} finished runs", interval=1)
    assert all(r["status"] == "SUCCESS" for r in runs), runs
    return runs


def _stream_messages(platform: Platform) -> int:
    async def info() -> int:
        nc = await nats.connect(platform.nats_url)
        try:
            si = await nc.jetstream().stream_info("STORAGE_EVENTS")
            return si.state.messages
        finally:
            await nc.close()

    return asyncio.run(info())


def test_landed_csv_becomes_queryable_once(platform: Platform, tmp_path: Path) -> None:
    first = write_csv(tmp_path / "orders.csv", 1000)
    put = platform.lakewire("put", str(first), "landing/orders/day one.csv")
    # The etag shown is the content MD5, the identity the API, events and ledger use.
    assert f"etag {hashlib.md5(first.read_bytes()).hexdigest()}" in put.stdout
    wait_for(lambda: platform.count("delta.default.orders") == 1000, 60, "1000 rows", 1)

    # The same bytes again: a new event, a run, and no new rows.
    platform.lakewire("put", str(first), "landing/orders/day one.csv")
    _successful_runs(platform, 2)
    assert platform.count("delta.default.orders") == 1000

    second = write_csv(tmp_path / "more.csv", 250, start=1000)
    platform.lakewire("put", str(second), "landing/orders/dág twö.csv")
    wait_for(lambda: platform.count("delta.default.orders") == 1250, 60, "1250 rows", 1)
    rows = platform.sql(
        "SELECT _source_uri AS uri, count(*) AS n FROM delta.default.orders GROUP BY 1 ORDER BY 1"
    )
    assert rows == [
        {"uri": "s3://landing/orders/day one.csv", "n": 1000},
        {"uri": "s3://landing/orders/dág twö.csv", "n": 250},
    ]


def test_plain_copy_into_bucket_folder_is_ingested(platform: Platform, tmp_path: Path) -> None:
    target = platform.data_dir / "storage" / "landing" / "copied" / "c.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written in two halves with a pause, as a slow `cp` would: one event, for the whole file.
    body = write_csv(tmp_path / "c.csv", 400).read_bytes()
    with target.open("wb") as fh:
        fh.write(body[: len(body) // 2])
        fh.flush()

        time.sleep(0.1)
        fh.write(body[len(body) // 2 :])
    wait_for(lambda: platform.count("delta.default.copied") == 400, 60, "400 rows", 1)


def test_restart_keeps_table_runs_and_stream_and_replays_nothing(
    platform: Platform, tmp_path: Path
) -> None:
    wait_for(lambda: platform.settled_runs(), 60, "runs to settle", 1)
    before_rows = platform.count("delta.default.orders")
    before_runs = len(platform.ingest_runs())
    before_msgs = _stream_messages(platform)
    assert before_rows and before_runs and before_msgs

    platform.lakewire("down")
    restarted = time.time()
    platform.lakewire("up", "--detach")

    assert platform.count("delta.default.orders") == before_rows
    assert _stream_messages(platform) == before_msgs
    # Three finished sensor ticks after the restart: a replayed event would have started a run.
    wait_for(lambda: platform.sensor_ticks_since(restarted) >= 3, 90, "three sensor ticks", 1)
    assert len(platform.ingest_runs()) == before_runs
    assert platform.count("delta.default.orders") == before_rows

    extra = write_csv(tmp_path / "after.csv", 10, start=5000)
    platform.lakewire("put", str(extra), "landing/orders/after-restart.csv")
    wait_for(lambda: platform.count("delta.default.orders") == before_rows + 10, 60, "new rows", 1)


def test_put_errors_are_one_line(platform: Platform, tmp_path: Path) -> None:
    missing = platform.lakewire("put", str(tmp_path / "nope.csv"), "landing/x.csv", check=False)
    assert missing.returncode == 1
    assert "no such file" in missing.stderr and "Traceback" not in missing.stderr

    f = write_csv(tmp_path / "f.csv", 1)
    nobucket = platform.lakewire("put", str(f), "no-such-bucket/x.csv", check=False)
    assert nobucket.returncode == 1
    assert "bucket 'no-such-bucket' does not exist" in nobucket.stderr

    badkey = platform.lakewire("put", str(f), "landing/../escape.csv", check=False)
    assert badkey.returncode == 1 and "'..'" in badkey.stderr


def test_port_in_use_names_the_setting(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = platform_env(tmp_path / "data", LAKEWIRE_STORAGE_PORT=str(port))
        p = Platform(tmp_path / "data", env)
        proc = p.lakewire("up", "--detach", check=False)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.strip().splitlines() if line]
    assert len(lines) == 1, proc.stderr
    assert f"port {port}" in lines[0] and "LAKEWIRE_STORAGE_PORT" in lines[0]
