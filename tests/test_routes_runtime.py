"""Routes changed while the platform runs: the storage service seeds the live routes from the
routes file, `PUT /api/routes` validates and versions a change (422 naming route and field), and
the next object landed takes the new route through the real sensor and run, with no restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, build_sensor_context, instance_for_test

from lakehouse.objectstore import open_object_store
from lakehouse.routes import SYSTEM_BUCKET, settings_routes
from lakehouse.routes_store import RoutesStore
from lakehouse.settings import Settings
from lakehouse.tables import TableRef, open_target
from pipelines.jobs import ingest_job
from pipelines.resources import LakewireResource
from pipelines.sensors import build_event_sensor
from tests.helpers import API_KEY, NatsServer, Service, csv_bytes, local_settings, wait_for

SEED = """version: 2
routes:
  - name: landing_files
    glob: "*/**"
    table: default.{dataset}
"""
ORDERS_FIRST = """version: 2
routes:
  - name: orders
    glob: "orders/**/*.csv"
    table: sales.orders
  - name: landing_files
    glob: "*/**"
    table: default.{dataset}
"""
SHADOWED = SEED + '  - name: orders\n    glob: "orders/**/*.csv"\n    table: sales.orders\n'


@pytest.fixture
def running(
    tmp_path: Path, nats: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Service, DagsterInstance]]:
    routes = tmp_path / "routes.yaml"
    routes.write_text(SEED)
    settings = local_settings(tmp_path, nats, routes_file=routes)
    # The sensor and runs build their settings from the environment, as in the code location.
    for k, v in {
        "LAKEWIRE_DATA_DIR": str(settings.data_dir),
        "LAKEWIRE_NATS_URL": nats.url,
        "LAKEWIRE_ROUTES_FILE": str(routes),
        "LAKEWIRE_API_KEY": API_KEY,
        "LAKEWIRE_WATCH_SETTLE_SECONDS": "0.2",
    }.items():
        monkeypatch.setenv(k, v)
    with Service(settings) as svc, instance_for_test() as instance:
        yield svc, instance


def _tick_until_runs(instance: DagsterInstance, cursor: str | None) -> Any:
    sensor = build_event_sensor(5)

    def tick() -> Any:
        ctx = build_sensor_context(
            instance=instance, cursor=cursor, resources={"lakewire": LakewireResource()}
        )
        result = sensor.evaluate_tick(ctx)
        return result if result.run_requests else None

    return wait_for(tick, timeout=30, what="the sensor to request a run", interval=0.5)


def _run(instance: DagsterInstance, result: Any) -> None:
    for rr in result.run_requests:
        run = ingest_job.execute_in_process(
            run_config=rr.run_config,
            instance=instance,
            resources={"lakewire": LakewireResource()},
            tags=rr.tags,
        )
        assert run.success


def test_route_change_through_the_api_takes_the_next_object_without_restart(
    running: tuple[Service, DagsterInstance],
) -> None:
    svc, instance = running
    c = svc.client
    settings = Settings()

    # First start seeded the live routes from the routes file.
    live = c.get("/api/routes").json()
    assert live["version"] == 1 and live["source"] == f"{SYSTEM_BUCKET} routes v1"
    assert [r["name"] for r in live["routes"]] == ["landing_files"]
    assert live["yaml"] == SEED

    # Before the change: orders/2024.csv goes to the catch-all.
    c.put("/api/buckets/landing/objects/orders/2024.csv", content=csv_bytes(3))
    first = _tick_until_runs(instance, None)
    assert [r.tags["lakewire/route"] for r in first.run_requests] == ["landing_files"]
    assert [r.tags["lakewire/table"] for r in first.run_requests] == ["delta.default.orders"]
    _run(instance, first)

    # A shadowed route is refused with the rule, the route and the field; nothing changes.
    refused = c.put("/api/routes", content=SHADOWED, headers={"Content-Type": "application/yaml"})
    assert refused.status_code == 422
    (issue,) = refused.json()["detail"]
    assert issue["route"] == "orders" and issue["field"] == "glob"
    assert "can never match" in issue["message"] and "'landing_files'" in issue["message"]
    bad_field = c.put("/api/routes", content="routes:\n  - {name: x, glob: 'a/*', table: T}\n")
    assert bad_field.status_code == 422
    assert bad_field.json()["detail"][0]["route"] == "x"
    assert bad_field.json()["detail"][0]["field"] == "table"
    assert c.get("/api/routes").json()["version"] == 1

    # The change: a stale If-Match is a conflict; the right one makes version 2 live.
    stale = c.put("/api/routes", content=ORDERS_FIRST, headers={"If-Match": "7"})
    assert stale.status_code == 409
    changed = c.put(
        "/api/routes?comment=orders+table", content=ORDERS_FIRST, headers={"If-Match": "1"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert [r["name"] for r in changed.json()["routes"]] == ["orders", "landing_files"]
    assert [r.name for r in settings_routes(settings)] == ["orders", "landing_files"]

    # The next object takes the new route: same service, same code location, no restart.
    c.put("/api/buckets/landing/objects/orders/2025.csv", content=csv_bytes(5))
    second = _tick_until_runs(instance, first.cursor)
    assert [r.tags["lakewire/route"] for r in second.run_requests] == ["orders"]
    assert [r.tags["lakewire/table"] for r in second.run_requests] == ["delta.sales.orders"]
    _run(instance, second)
    store = open_object_store(settings)
    assert open_target(settings, store, TableRef("delta", "sales", "orders")).row_count() == 5
    assert open_target(settings, store, TableRef("delta", "default", "orders")).row_count() == 3

    explained = c.get("/api/routes/explain", params={"bucket": "landing", "key": "orders/x.csv"})
    assert explained.json()["route"] == "orders"
    assert explained.json()["also_matched"] == ["landing_files"]

    # History: who, when, why, diff; a rollback is a new version with the old text.
    history = c.get("/api/routes/history").json()
    assert [(h["version"], h["source"]) for h in history] == [(1, "seed"), (2, "api")]
    assert history[1]["comment"] == "orders table" and "api (admin key)" in history[1]["author"]
    assert "+  - name: orders" in history[1]["diff"] and history[1]["at"]
    rolled = c.post("/api/routes/rollback", json={"version": 1})
    assert rolled.status_code == 200 and rolled.json()["version"] == 3
    assert rolled.json()["yaml"] == SEED
    assert c.post("/api/routes/rollback", json={"version": 42}).status_code == 404
    assert [r.name for r in settings_routes(settings)] == ["landing_files"]

    # The API needs the admin key.
    from fastapi.testclient import TestClient

    assert TestClient(c.app).get("/api/routes").status_code == 401


def test_seed_happens_once_and_the_file_is_used_until_then(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(SEED)
    settings = Settings(data_dir=tmp_path / "data", routes_file=routes)
    store = RoutesStore(settings)
    assert store.latest() is None
    assert [r.name for r in settings_routes(settings)] == ["landing_files"]  # the file
    seeded = store.seed()
    assert seeded is not None and seeded.version == 1 and seeded.source == "seed"
    routes.write_text(ORDERS_FIRST)  # after the seed the file no longer decides
    assert store.seed() is None
    assert [r.name for r in settings_routes(settings)] == ["landing_files"]
