"""The embedded platform as a benchmark drives it: started like ``lakewire up --detach``.

It reuses the tests' ``Platform`` (free ports, own data dir, the real CLI) so a benchmark
measures exactly what a user runs; only the probes (GraphQL run stats, in-process table counts)
are added here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from lakehouse.objectstore import LocalObjectStore, open_object_store
from lakehouse.settings import Settings
from lakehouse.sql import SqlEngine, TableNotFound
from tests.helpers import Platform, platform_env

RUNS_QUERY = """
query Runs($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}, limit: 100000) {
    ... on Runs {
      results {
        runId status creationTime
        tags { key value }
        stats { ... on RunStatsSnapshot { enqueuedTime launchTime startTime endTime } }
      }
    }
  }
}
"""

TICKS_QUERY = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { ticks(limit: 1000) { timestamp status } } }
  }
}
"""


@dataclass
class RunningPlatform:
    platform: Platform
    settings: Settings
    store: LocalObjectStore
    startup_s: float = 0.0

    @property
    def pids(self) -> dict[str, int]:
        import json

        path = self.settings.state_dir / "supervisor.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        resp = httpx.post(
            f"{self.platform.dagster_url}/graphql",
            json={"query": query, "variables": variables},
            timeout=60,
        )
        resp.raise_for_status()
        body = resp.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL error: {body['errors']}")
        return body["data"]

    def runs(self, table: str) -> list[dict[str, Any]]:
        """Runs of one table, with Dagster's run stats (enqueued, launched, started, ended)."""
        tags = [{"key": "lakewire/table", "value": table}]
        data = self.graphql(RUNS_QUERY, {"tags": tags})
        runs = data["runsOrError"]["results"]
        for r in runs:
            r["tag"] = {t["key"]: t["value"] for t in r.pop("tags")}
        return runs

    def sensor_ticks(self) -> list[dict[str, Any]]:
        selector = {
            "repositoryLocationName": "lakewire",
            "repositoryName": "__repository__",
            "sensorName": "bucket_events",
        }
        data = self.graphql(TICKS_QUERY, {"selector": selector})
        return data["sensorOrError"]["sensorState"]["ticks"]

    def count(self, sql: str) -> int:
        """Run one query on a fresh embedded SQL engine, as ``lakewire sql`` does; 0 if no table."""
        engine = SqlEngine(self.settings, self.store)
        try:
            return int(engine.query(sql).rows[0][0])
        except TableNotFound:
            return 0
        finally:
            engine.close()

    def wait_rows(self, table_dir: str, sql: str, expected: int, timeout: float) -> float | None:
        """Block until ``sql`` counts ``expected``; returns the time it did (None on timeout).

        A count on a fresh engine costs ~0.1 s, so it runs only when the table's log gains a
        commit; listing ``_delta_log`` is cheap enough to poll every 20 ms without stealing
        the CPU the platform is being measured on.
        """
        log_dir = self.settings.storage_root / self.settings.lake_bucket / table_dir / "_delta_log"
        deadline = time.time() + timeout
        seen = -1
        while time.time() < deadline:
            try:
                commits = sum(1 for n in os.listdir(log_dir) if n.endswith(".json"))
            except FileNotFoundError:
                commits = 0
            if commits != seen:
                seen = commits
                if commits and self.count(sql) >= expected:
                    return time.time()
            time.sleep(0.02)
        return None

    def stream_times(self, subject: str) -> dict[str, datetime]:
        """When JetStream stored each event of ``subject``, keyed by 'bucket/key'."""
        return asyncio.run(_stream_times(self.settings, subject))


async def _stream_times(settings: Settings, subject: str) -> dict[str, datetime]:
    import json

    nc = await nats.connect(settings.effective_nats_url)
    out: dict[str, datetime] = {}
    try:
        js = nc.jetstream()
        info = await js.stream_info(settings.stream_name)
        sub = await js.pull_subscribe(
            subject,
            durable=None,
            stream=settings.stream_name,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=30.0,
            ),
        )
        seen = 0
        while seen < info.state.messages:
            try:
                msgs = await sub.fetch(1000, timeout=2.0)
            except nats.errors.TimeoutError:
                break
            for msg in msgs:
                seen += 1
                key = json.loads(msg.data).get("Key")
                out.setdefault(key, msg.metadata.timestamp)
    finally:
        await nc.close()
    return out


@contextlib.contextmanager
def embedded_platform(root: Path, **env: str) -> Iterator[RunningPlatform]:
    data_dir = root / "platform"
    p = Platform(data_dir, platform_env(data_dir, **env))
    started = time.monotonic()
    p.lakewire("up", "--detach")
    settings = Settings(
        data_dir=data_dir, nats_url=p.nats_url, storage_port=int(p.env["LAKEWIRE_STORAGE_PORT"])
    )
    store = open_object_store(settings)
    assert isinstance(store, LocalObjectStore)
    running = RunningPlatform(p, settings, store, time.monotonic() - started)
    try:
        yield running
    finally:
        p.lakewire("down", check=False)
