"""The sensor path in the real Dagster daemon: `lakewire up`, files land, runs ingest them.

All daemon-path tests share one platform (it takes ~30 s to start).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import Platform, csv_bytes, wait_for

pytestmark = pytest.mark.platform

FILES = 500
ROWS = 10


def _drop(platform: Platform, key: str, body: bytes) -> None:
    """A file copied into the bucket folder, as any writer would; renamed in atomically."""
    target = platform.data_dir / "storage" / "landing" / key
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(body)
    os.replace(tmp, target)


def _runs_for(platform: Platform, table: str) -> list[dict[str, Any]]:
    return [r for r in platform.runs() if {"key": "lakewire/table", "value": table} in r["tags"]]


def test_burst_of_500_files_lands_exactly_once_in_a_handful_of_runs(platform: Platform) -> None:
    for i in range(FILES):
        _drop(platform, f"burst/part-{i:04d}.csv", csv_bytes(ROWS, start=i * ROWS))
    expected = FILES * ROWS
    wait_for(
        lambda: (platform.count("delta.default.burst") or 0) >= expected,
        timeout=180,
        what=f"{expected} rows",
        interval=2,
    )
    wait_for(lambda: platform.settled_runs(), 60, "runs to settle", 1)
    assert platform.count("delta.default.burst") == expected
    rows = platform.sql(
        "SELECT count(DISTINCT id) AS ids, count(DISTINCT _source_uri) AS objs "
        "FROM delta.default.burst"
    )
    assert rows == [{"ids": expected, "objs": FILES}]
    runs = _runs_for(platform, "delta.default.burst")
    assert all(r["status"] == "SUCCESS" for r in runs), runs
    # A handful of micro-batches, not one run per file.
    assert 1 <= len(runs) <= 25, len(runs)
    print(f"{FILES} files -> {len(runs)} runs")


def test_bad_file_is_quarantined_and_good_file_of_same_batch_ingested(platform: Platform) -> None:
    _drop(platform, "mixed/good.csv", csv_bytes(6))
    _drop(platform, "mixed/bad.csv", b"id,amount,name\n")
    wait_for(lambda: platform.count("delta.default.mixed") == 6, 90, "good rows", 1)
    reason_file = platform.data_dir / "storage/landing/quarantine/mixed/bad.csv.reason.json"
    wait_for(reason_file.is_file, 30, "quarantine reason")
    reason = json.loads(reason_file.read_text())
    assert reason["kind"] == "empty" and reason["table"] == "delta.default.mixed"
    # Dagster recorded the failed quarantine check against the table's asset.
    wait_for(lambda: platform.settled_runs(), 60, "runs to settle", 1)
    query = """{ assetCheckExecutions(assetKey: {path: ["delta", "default", "mixed"]},
                 checkName: "no_quarantined_objects", limit: 1) {
                 status evaluation { success description } } }"""
    resp = httpx.post(f"{platform.dagster_url}/graphql", json={"query": query}, timeout=10)
    (execution,) = resp.json()["data"]["assetCheckExecutions"]
    assert execution["evaluation"]["success"] is False
    assert "mixed/bad.csv: empty" in execution["evaluation"]["description"]


def test_reconcile_cli_finds_nothing_missing_after_ingestion(
    platform: Platform, tmp_path: Path
) -> None:
    wait_for(lambda: platform.settled_runs(), 60, "runs to settle", 1)
    out = platform.lakewire("reconcile", "--grace", "0", "--dry-run")
    assert "0 would re-emit" in out.stdout, out.stdout


def test_trickle_from_8_clients_never_queues_more_than_one_run_per_table(
    platform: Platform,
) -> None:
    """300 objects put through the API by 8 clients over ~30 s: every row lands once, and the
    table never has more than one run waiting, however the files trickle in. (The seconds from
    the last put to queryable are measured by `bench/` trickle, not asserted here.)"""
    import threading
    import time

    key = platform.lakewire("status", "--show-key").stdout.split("API key: ")[1].split()[0]
    table, clients, per_client, rows = "delta.default.trickle", 8, 38, 10
    total = clients * per_client  # 304
    stop = threading.Event()
    most_waiting = [0]

    def sample() -> None:
        while not stop.is_set():
            waiting = [
                r for r in _runs_for(platform, table) if r["status"] in ("QUEUED", "NOT_STARTED")
            ]
            most_waiting[0] = max(most_waiting[0], len(waiting))
            stop.wait(0.3)

    def client(n: int) -> None:
        with httpx.Client(
            base_url=platform.storage_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as c:
            for i in range(per_client):
                body = csv_bytes(rows, start=(n * per_client + i) * rows)
                resp = c.put(f"/api/buckets/landing/objects/trickle/c{n}-{i:03d}.csv", content=body)
                assert resp.status_code == 201, resp.text
                time.sleep(30 / per_client)  # the arrival shape: a steady trickle, not a burst

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    last_put = time.monotonic()
    try:
        wait_for(lambda: (platform.count(table) or 0) >= total * rows, 120, "all trickled rows", 1)
        queryable_after = time.monotonic() - last_put
        wait_for(lambda: platform.settled_runs(), 60, "runs to settle", 1)
    finally:
        stop.set()
        sampler.join(10)
    assert platform.count(table) == total * rows
    assert most_waiting[0] <= 1, most_waiting[0]
    runs = _runs_for(platform, table)
    assert all(r["status"] == "SUCCESS" for r in runs), runs
    print(
        f"trickle: {total} objects -> {len(runs)} runs; queryable {queryable_after:.1f} s "
        f"after the last put; at most {most_waiting[0]} run waiting"
    )
