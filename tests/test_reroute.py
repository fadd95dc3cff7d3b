"""Re-routing (issue 18): objects that went to the wrong table move to the right one in a
Dagster run, their rows leaving the wrong table by lineage, exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dagster import DagsterEventType, instance_for_test

from lakehouse.routes import RoutesError
from lakehouse.settings import Settings
from lakehouse.tables import TableRef, open_target
from pipelines.ingestion import ingest_batch
from pipelines.reroute import reroute
from tests.helpers import csv_bytes, land

WRONG = "delta.default.orders"
RIGHT = "iceberg.sales.orders"
ROUTES = """
version: 2
routes:
  - name: orders
    glob: "orders/**/*.csv"
    format: iceberg
    table: sales.orders
    priority: 10
  - name: landing_files
    glob: "*/**"
    table: default.{dataset}
"""


@pytest.fixture
def env(pipeline_env: Callable[[str | None], Any]) -> Iterator[Any]:
    s, store = pipeline_env(ROUTES)
    with instance_for_test() as instance:
        yield s, store, instance


def _rows(settings: Settings, store: Any, table: str) -> int:
    try:
        return open_target(settings, store, TableRef.parse(table)).row_count()
    except Exception:
        return 0


def test_reroute_moves_rows_to_the_right_table_exactly_once(env: Any) -> None:
    settings, store, instance = env
    sources = [
        land(store, "landing", f"orders/2024/o{i}.csv", csv_bytes(10, start=i * 10))
        for i in range(3)
    ]
    other = land(store, "landing", "orders/readme.txt", b"not an order")
    # Before the orders route existed, they went to the catch-all's table.
    ingest_batch(settings, store, TableRef.parse(WRONG), sources, "earlier-run")
    assert _rows(settings, store, WRONG) == 30

    first = reroute(settings, store, instance, "landing", "orders/", "orders", WRONG)
    assert [(r.table, r.objects, r.success) for r in first.runs] == [(RIGHT, 3, True)]
    assert _rows(settings, store, RIGHT) == 30
    assert _rows(settings, store, WRONG) == 0
    assert other.key not in str(first)  # not the route's: left alone
    run = instance.get_run_by_id(first.runs[0].run_id)
    assert run is not None and run.tags["lakewire/reroute_from"] == WRONG
    moved_out = [
        e
        for e in instance.all_logs(first.runs[0].run_id)
        if e.dagster_event
        and e.dagster_event.event_type == DagsterEventType.ASSET_MATERIALIZATION
        and e.dagster_event.asset_key is not None
        and e.dagster_event.asset_key.path == ["delta", "default", "orders"]
    ]
    assert len(moved_out) == 1  # the wrong table's asset shows the rows leaving

    again = reroute(settings, store, instance, "landing", "orders/", "orders", WRONG)
    assert [r.success for r in again.runs] == [True]
    assert _rows(settings, store, RIGHT) == 30
    assert _rows(settings, store, WRONG) == 0


def test_reroute_refuses_a_route_of_another_bucket_or_into_the_same_table(env: Any) -> None:
    settings, store, instance = env
    land(store, "landing", "orders/2024/o.csv", csv_bytes(2))
    with pytest.raises(RoutesError, match="reads bucket 'landing'"):
        reroute(settings, store, instance, "lake", "orders/", "orders", WRONG)
    with pytest.raises(RoutesError, match="nothing to move it from"):
        reroute(settings, store, instance, "landing", "orders/", "orders", RIGHT)


def test_replay_cli_reroutes_through_the_platforms_instance(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from lakewire.cli import app

    settings, store, _ = env
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    src = land(store, "landing", "orders/2024/o.csv", csv_bytes(4))
    ingest_batch(settings, store, TableRef.parse(WRONG), [src], "earlier-run")
    args = ["replay", "--prefix", "landing/orders/", "--route", "orders", "--remove-from", WRONG]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert f"{RIGHT}: 1 objects, run " in out.output and " ok" in out.output
    assert (_rows(settings, store, RIGHT), _rows(settings, store, WRONG)) == (4, 0)
    assert (settings.dagster_home / "storage").is_dir()  # the run is in the platform's instance
    bad = CliRunner().invoke(app, ["replay", "--prefix", "landing/orders/"])
    assert bad.exit_code != 0 and "--route" in bad.output
