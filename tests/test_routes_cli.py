"""`lakewire routes`: ls, check (exit codes for CI), explain, and apply/history/rollback/export
on the live routes in the system bucket."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakewire.cli import app

ROUTES = """version: 2
routes:
  - name: orders
    glob: "orders/**/*.csv"
    format: iceberg
    table: sales.orders
    mode: merge
    merge_keys: [order_id]
  - name: landing_files
    glob: "*/**"
    table: default.{dataset}
"""
SHADOWED = """version: 2
routes:
  - {name: landing_files, glob: "*/**", table: "default.{dataset}"}
  - {name: orders, glob: "orders/**/*.csv", table: sales.orders}
"""
OVERLAP = """version: 2
routes:
  - {name: csvs, glob: "*/*.csv", table: "raw.{dataset}"}
  - {name: orders, glob: "orders/**", table: sales.orders}
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    monkeypatch.setenv("LAKEWIRE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LAKEWIRE_ROUTES_FILE", str(routes))
    return CliRunner()


def test_routes_ls_shows_order_glob_table_format_mode(cli: CliRunner, tmp_path: Path) -> None:
    out = cli.invoke(app, ["routes", "ls"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert f"routes from {tmp_path / 'routes.yaml'}" in out.output
    rows = [line for line in out.output.splitlines() if "orders/**/*.csv" in line]
    assert rows and "iceberg.sales.orders" in rows[0] and "merge" in rows[0]
    assert out.output.index("orders/**/*.csv") < out.output.index("*/**")


def test_routes_check_exit_codes(cli: CliRunner, tmp_path: Path) -> None:
    ok = cli.invoke(app, ["routes", "check"])
    assert ok.exit_code == 0 and "ok: 2 routes" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(SHADOWED)
    out = cli.invoke(app, ["routes", "check", str(bad)])
    assert out.exit_code == 1
    assert "route 'orders' field 'glob'" in out.output and "'landing_files'" in out.output
    warn = tmp_path / "warn.yaml"
    warn.write_text(OVERLAP)
    out = cli.invoke(app, ["routes", "check", str(warn)])
    assert out.exit_code == 0 and "warning:" in out.output and "overlap" in out.output
    assert cli.invoke(app, ["routes", "check", "--strict", str(warn)]).exit_code == 2


def test_routes_explain_names_winner_table_options_and_other_matches(cli: CliRunner) -> None:
    out = cli.invoke(
        app,
        [
            "routes",
            "explain",
            "landing/orders/2024.csv",
            "landing/shop/2024/a.parquet",
            "landing/loose.csv",
            "landing/quarantine/shop/a.csv",
            "landing/shop/readme.md",
        ],
    )
    assert out.exit_code == 0, out.output
    blocks = out.output.split("\n\n")
    orders = next(b for b in blocks if "landing/orders/2024.csv" in b)
    assert "route:        orders (glob orders/**/*.csv)" in orders
    assert "table:        iceberg.sales.orders" in orders
    assert "file format:  csv" in orders
    assert '"merge_keys": ["order_id"]' in orders and '"mode": "merge"' in orders
    assert "also matched: landing_files" in orders
    shop = next(b for b in blocks if "landing/shop/2024/a.parquet" in b)
    assert "delta.default.shop" in shop and "parquet" in shop and "also matched: none" in shop
    assert "no route matches" in next(b for b in blocks if "landing/loose.csv" in b)
    assert "never routed" in next(b for b in blocks if "quarantine/shop" in b)
    assert "would be quarantined" in next(b for b in blocks if "readme.md" in b)
    assert cli.invoke(app, ["routes", "explain", "landing"]).exit_code == 1


def test_apply_history_rollback_export_on_the_live_routes(cli: CliRunner, tmp_path: Path) -> None:
    assert "no live routes yet" in cli.invoke(app, ["routes", "history"]).output
    changed = tmp_path / "changed.yaml"
    changed.write_text(ROUTES.replace("sales.orders", "sales.orders_v2"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(SHADOWED)
    refused = cli.invoke(app, ["routes", "apply", str(bad)])
    assert refused.exit_code == 1 and "route 'orders' field 'glob'" in refused.output

    out = cli.invoke(app, ["routes", "apply", str(changed), "-m", "v2 table"])
    assert out.exit_code == 0 and "routes version 1 is live" in out.output
    ls = cli.invoke(app, ["routes", "ls"], env={"COLUMNS": "200"})
    assert "lakewire-system routes v1" in ls.output and "sales.orders_v2" in ls.output
    explained = cli.invoke(app, ["routes", "explain", "landing/orders/a.csv"])
    assert "iceberg.sales.orders_v2" in explained.output

    back = cli.invoke(app, ["routes", "apply", str(tmp_path / "routes.yaml")])
    assert "routes version 2 is live" in back.output
    out = cli.invoke(app, ["routes", "rollback", "1"])
    assert out.exit_code == 0 and "routes version 3 is live (the text of v1)" in out.output
    history = cli.invoke(app, ["routes", "history", "--diff"]).output
    assert "v1" in history and "v2" in history and "rollback" in history and "v2 table" in history
    assert "+    table: sales.orders_v2" in history and "cli " in history

    exported = cli.invoke(app, ["routes", "export"])
    assert exported.output == changed.read_text()
    target = tmp_path / "out.yaml"
    assert cli.invoke(app, ["routes", "export", "--version", "2", "-o", str(target)]).exit_code == 0
    assert target.read_text() == ROUTES
    assert cli.invoke(app, ["routes", "rollback", "9"]).exit_code == 1
