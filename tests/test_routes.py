"""The routes file: parsed and validated at load, with errors that name the route and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.routes import DEFAULT_FILE, RoutesError, load_routes, parse_routes, route_for
from lakehouse.settings import Settings
from lakehouse.tables import TableRef

FULL = """
routes:
  - name: orders
    bucket: landing
    glob: "orders/**/*.csv"
    format: iceberg
    table: sales.orders
    csv: {separator: ";", null_values: ["NA"]}
    mode: merge
    merge_keys: [order_id]
    schema: {order_id: int64, amount: "decimal(12,2)", placed: timestamp}
    evolution: {add_columns: false}
    on_delete: delete_rows
    max_object_bytes: 1000
  - name: events
    glob: "events/*"
    file_format: ndjson
    table: raw.events
    mode: overwrite
    partition_by: [day]
  - name: per_dataset
    glob: "*/*.csv"
    table: "default.{dataset}"
"""


def test_full_routes_file_parses_every_option() -> None:
    orders, events, per_dataset = parse_routes(FULL)
    assert orders.table_for("orders/2024/a.csv") == TableRef("iceberg", "sales", "orders")
    assert orders.csv.separator == ";" and orders.csv.null_values == ["NA"]
    assert orders.write_spec.merge_keys == ("order_id",)
    assert (
        orders.dtypes is not None
        and str(orders.dtypes["amount"]) == "Decimal(precision=12, scale=2)"
    )
    assert not orders.evolution.add_columns and orders.on_delete == "delete_rows"
    assert events.file_format == "ndjson" and events.write_spec.partition_by == ("day",)
    assert per_dataset.is_pattern and per_dataset.static_table() is None
    assert per_dataset.table_for("Web Logs/x.csv") == TableRef("delta", "default", "web_logs")
    assert per_dataset.table_for("2024/x.csv").name == "t_2024"


def test_first_matching_route_wins_and_quarantine_keys_never_match() -> None:
    routes = parse_routes(FULL)
    s = Settings()
    assert route_for(routes, "landing", "orders/2024/a.csv", s).name == "orders"  # type: ignore[union-attr]
    assert route_for(routes, "landing", "shop/a.csv", s).name == "per_dataset"  # type: ignore[union-attr]
    assert route_for(routes, "landing", "quarantine/shop/a.csv", s) is None
    assert route_for(routes, "other", "shop/a.csv", s) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("routes: [", "not valid YAML"),
        ("tables: []", "expected a mapping with a 'routes' list"),
        ("routes: []", "at least 1 item"),
        ("routes:\n  - {name: a, glob: '*', table: nodot}", "route 1 'a': table"),
        ("routes:\n  - {name: a, glob: '*', table: s.t, mode: merge}", "needs merge_keys"),
        ("routes:\n  - {name: a, glob: '*', table: s.t, mode: overwrite}", "needs partition_by"),
        ("routes:\n  - {name: a, glob: '*', table: s.t, format: hudi}", "format"),
        ("routes:\n  - {name: a, glob: '*', table: s.t, colour: red}", "colour"),
        (
            "routes:\n  - {name: a, glob: '*', table: s.t, schema: {x: varchar}}",
            "unknown column type 'varchar'",
        ),
        (
            "routes:\n  - {name: a, glob: '*', table: s.t}\n  - {name: a, glob: '*', table: s.u}",
            "used twice",
        ),
        ("routes:\n  - {name: a, glob: '*', table: s.t, csv: {separator: ';;'}}", "csv.separator"),
    ],
)
def test_invalid_routes_are_rejected_with_the_reason(body: str, message: str) -> None:
    with pytest.raises(RoutesError) as err:
        parse_routes(body, "routes.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("routes.yaml")


def test_routes_file_setting_and_project_default(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("routes:\n  - {name: x, glob: 'a/*', table: s.t}\n")
    assert [r.name for r in load_routes(f)] == ["x"]
    with pytest.raises(RoutesError, match="cannot read routes file"):
        load_routes(tmp_path / "missing.yaml")
    # Unset: the project's routes.yaml, which must itself be valid.
    assert DEFAULT_FILE.is_file()
    assert load_routes(None)[0].name == "landing_files"


def test_routes_become_table_assets_with_quarantine_checks(tmp_path: Path) -> None:
    from dagster import AssetKey

    from pipelines.definitions import build_definitions

    f = tmp_path / "routes.yaml"
    f.write_text(FULL)
    settings = Settings(data_dir=tmp_path / "data", routes_file=f)
    graph = build_definitions(settings).resolve_asset_graph()
    # Fixed tables are declared at load; a {dataset} route's tables appear as they are created.
    keys = {AssetKey(["iceberg", "sales", "orders"]), AssetKey(["delta", "raw", "events"])}
    tables = {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "tables"}
    assert tables == keys  # (the example pipelines' assets are in groups of their own)
    node = graph.get(AssetKey(["iceberg", "sales", "orders"]))
    assert node.metadata["route"] == "orders"
    assert node.metadata["route_definition"].value["merge_keys"] == ["order_id"]
    assert {k.asset_key for k in graph.asset_check_keys} == keys
