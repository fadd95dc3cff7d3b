"""`lakewire status` health: outbox, stream vs sensor cursor, runs, quarantine, disk.

The first test reads the parts straight from a service's state with NATS and Dagster away; the
second runs `lakewire status --json` on the shared embedded platform.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from lakehouse.settings import Settings
from lakewire import health
from tests.helpers import API_KEY, Platform, Service, csv_bytes, free_port, wait_for


def test_health_reads_the_state_with_nats_and_dagster_away(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        nats_url=f"nats://127.0.0.1:{free_port()}",  # nothing listens on either
        dagster_port=free_port(),
        watch_settle_seconds=0.2,
        api_key=SecretStr(API_KEY),
    )
    with Service(settings) as svc:
        c = svc.client
        for n in range(3):
            assert c.put(f"/api/buckets/landing/objects/h/{n}.csv", content=b"1").status_code == 201
        reason = "/api/buckets/landing/objects/quarantine/h/bad.csv.reason.json"
        assert c.put(reason, content=b"{}").status_code == 201

        def settled() -> dict[str, Any] | None:
            h = health.collect(settings)
            done = h["outbox"].get("events", 0) >= 4 and h["quarantine"].get("objects") == 1
            return h if done else None

        report = wait_for(settled, 30, "events in the outbox and the reason file indexed")
    assert report["outbox"]["oldest_age_seconds"] >= 0
    assert report["stream"]["tail"] is None and "NATS unreachable" in report["stream"]["error"]
    assert "Dagster unreachable" in report["stream"]["error"]
    assert "Dagster unreachable" in report["runs"]["error"]
    assert report["disk"]["free_bytes"] > 0 and report["disk"]["total_bytes"] > 0
    assert report["disk"]["storage"]["path"] == str(settings.storage_root)
    assert report["disk"]["storage"]["free_bytes"] > 0
    text = "\n".join(health.lines(report))
    assert "Outbox:" in text and "Quarantined:         1 objects" in text and "Disk:" in text


def _drop(platform: Platform, key: str, body: bytes) -> None:
    target = platform.data_dir / "storage" / "landing" / key
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(body)
    os.replace(tmp, target)


@pytest.mark.platform
def test_status_json_shows_health_on_the_platform(platform: Platform) -> None:
    _drop(platform, "statushealth/good.csv", csv_bytes(4))
    _drop(platform, "statushealth/bad.csv", b"id,amount,name\n")
    wait_for(lambda: platform.count("delta.default.statushealth") == 4, 90, "good rows", 1)
    wait_for(lambda: platform.settled_runs(), 60, "runs to settle", 1)

    def caught_up() -> dict[str, Any] | None:
        report = json.loads(platform.lakewire("status", "--json").stdout)
        h = report["health"]
        ok = h["stream"]["lag"] == 0 and h["quarantine"].get("objects", 0) >= 1
        return report if ok else None

    report = wait_for(caught_up, 60, "the sensor cursor at the stream tail", 1)
    h = report["health"]
    assert report["all_running"] and [s["name"] for s in report["services"]]  # the shape stays
    assert h["outbox"] == {"events": 0, "oldest_age_seconds": 0.0}
    assert h["stream"]["tail"] >= 2 and h["stream"]["sensor_cursor"] == h["stream"]["tail"]
    assert "error" not in h["stream"] and "error" not in h["runs"]
    assert h["runs"]["queued"] == 0 and h["runs"]["succeeded_last_hour"] >= 1
    assert h["runs"]["failed_last_hour"] >= 0
    assert h["disk"]["free_bytes"] > 0

    text = platform.lakewire("status", "--show-key").stdout
    assert "Stream:              tail" in text and "lag 0" in text
    assert "Runs:                0 queued" in text
    key = json.loads(platform.lakewire("status", "--json", "--show-key").stdout)["api_key"]
    assert f"API key: {key}" in text.splitlines()
