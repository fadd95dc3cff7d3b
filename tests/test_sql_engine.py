"""The embedded SQL engine over Delta and Iceberg tables written by the real ingestion.

The same queries by three-part name run twice on one engine (an Iceberg table used to come back
empty the second time), with time travel, history, catalog inspection and the lockdown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from lakehouse.objectstore import open_object_store
from lakehouse.query import query, query_arrow
from lakehouse.routes import parse_routes
from lakehouse.settings import Settings
from lakehouse.sql import SqlEngine, TableNotFound
from lakehouse.sql_guard import SqlError, SqlRefused, classify
from pipelines.ingestion import ingest_batch
from tests.helpers import csv_bytes, land

FORMATS = ["delta", "iceberg"]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Any]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("sql") / "data")
    store = open_object_store(settings)
    for bucket in ("landing", "lake"):
        store.create_bucket(bucket)
    for fmt in FORMATS:
        r = parse_routes(
            "version: 2\nroutes:\n"
            f"  - {{name: r, glob: 'orders/*', format: {fmt}, table: sales.orders}}\n"
        )[0]
        ref = r.table_for("orders/a.csv")
        a = land(store, "landing", "orders/a.csv", csv_bytes(10))
        ingest_batch(settings, store, ref, [a], "run-1", route=r)
        b = land(store, "landing", "orders/b.csv", csv_bytes(5, start=10))
        ingest_batch(settings, store, ref, [b], "run-2", route=r)
    return settings, store


QUERIES = [
    "SELECT count(*) AS n FROM {t}",
    "SELECT id, name FROM {t} WHERE id >= 12 ORDER BY id",
    "SELECT _run_id, count(*) FROM {t} GROUP BY 1 ORDER BY 1",
    "SELECT o.id FROM {t} AS o JOIN {t} p ON o.id = p.id WHERE o.id < 2 ORDER BY 1",
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_queries_twice_on_one_engine_give_the_same_rows(fmt: str, lake: Any) -> None:
    settings, store = lake
    engine = SqlEngine(settings, store)
    try:
        t = f"{fmt}.sales.orders"
        first = [engine.query(q.format(t=t)).rows for q in QUERIES]
        second = [engine.query(q.format(t=t)).rows for q in QUERIES]
    finally:
        engine.close()
    assert first == second
    assert first[0] == [(15,)]
    assert [r[0] for r in first[1]] == [12, 13, 14]
    assert first[2] == [("run-1", 10), ("run-2", 5)]
    assert first[3] == [(0,), (1,)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_time_travel_and_history(fmt: str, lake: Any) -> None:
    settings, store = lake
    t = f"{fmt}.sales.orders"
    history = query(
        f'SELECT version, timestamp, rows_added, run_id FROM {fmt}.sales."orders$history" '
        "WHERE rows_added IS NOT NULL ORDER BY timestamp",
        settings=settings,
        store=store,
    )
    assert history["rows_added"].to_list() == [10, 5]
    assert history["run_id"].to_list() == ["run-1", "run-2"]  # which run made each version
    first = history["version"][0]
    n = query(
        f"SELECT count(*) AS n FROM {t} FOR VERSION AS OF {first}", settings=settings, store=store
    )
    assert n["n"].to_list() == [10]
    when = history["timestamp"][0].strftime("%Y-%m-%d %H:%M:%S.%f")
    n = query(
        f"SELECT count(*) AS n FROM {t} FOR TIMESTAMP AS OF TIMESTAMP '{when} UTC'",
        settings=settings,
        store=store,
    )
    assert n["n"].to_list() == [10]
    now = query(f"SELECT count(*) AS n FROM {t}", settings=settings, store=store)
    assert now["n"].to_list() == [15]


def test_catalog_inspection(lake: Any) -> None:
    settings, store = lake
    engine = SqlEngine(settings, store)
    try:
        assert engine.query("SHOW CATALOGS").rows == [("delta",), ("iceberg",), ("hive",)]
        assert ("sales",) in engine.query("SHOW SCHEMAS FROM iceberg").rows
        assert engine.query("SHOW TABLES FROM delta.sales").rows == [("orders",)]
        cols = engine.query("DESCRIBE iceberg.sales.orders").rows
        assert ("id", "bigint", "", "") in cols
        info = engine.query(
            "SELECT table_schema, table_name FROM delta.information_schema.tables"
        ).rows
        assert info == [("sales", "orders")]
    finally:
        engine.close()


def test_query_api_returns_polars_and_arrow_with_limit(lake: Any) -> None:
    settings, store = lake
    df = query(
        "SELECT id FROM delta.sales.orders ORDER BY id", limit=3, settings=settings, store=store
    )
    assert isinstance(df, pl.DataFrame) and df["id"].to_list() == [0, 1, 2]
    tbl = query_arrow("SELECT * FROM iceberg.sales.orders", settings=settings, store=store)
    assert tbl.num_rows == 15


def test_names_are_parsed_not_matched(lake: Any) -> None:
    settings, store = lake
    engine = SqlEngine(settings, store)
    try:
        # A name in a literal or a comment is no table; no such table exists, yet this runs.
        rows = engine.query("SELECT 'delta.sales.nope' AS s -- iceberg.x.y\n").rows
        assert rows == [("delta.sales.nope",)]
        with pytest.raises(TableNotFound):
            engine.query("SELECT * FROM delta.sales.nope")
    finally:
        engine.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM glob('/*')",
        "COPY (SELECT 1) TO '/tmp/lakewire-sql-test.csv'",
        "ATTACH '/tmp/lakewire-sql-test.db' AS y",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "INSERT INTO delta.sales.orders SELECT * FROM delta.sales.orders",
        "DROP TABLE delta.sales.orders",
        "CALL delta.system.register_table('a', 'b', 'c')",
    ],
)
def test_the_engine_never_reaches_the_host(sql: str, lake: Any) -> None:
    settings, store = lake
    engine = SqlEngine(settings, store)
    try:
        with pytest.raises(SqlError):
            engine.query(sql)
        assert engine.query("SELECT count(*) FROM delta.sales.orders").rows == [(15,)]
    finally:
        engine.close()
    assert not Path("/tmp/lakewire-sql-test.csv").exists()


def test_classifier_lets_only_reads_through_for_non_admins() -> None:
    assert classify("WITH a AS (SELECT 1) SELECT * FROM a").kind == "query"
    assert classify("SHOW TABLES FROM delta.default").kind == "show"
    assert classify("DESCRIBE delta.default.orders").kind == "describe"
    for sql in ["DELETE FROM delta.a.b", "CREATE TABLE delta.a.b (x int)", "CALL x.y.z()"]:
        with pytest.raises(SqlRefused):
            classify(sql)
        assert classify(sql, admin=True).kind == "other"
    with pytest.raises(SqlError) as err:
        classify("SELECT *\nFROM (SELECT 1")
    assert err.value.line == 2 and err.value.column


def test_local_delta_tables_are_scanned_by_duckdb_and_file_functions_stay_refused(
    lake: Any,
) -> None:
    settings, store = lake
    engine = SqlEngine(settings, store)
    try:
        assert engine.query("SELECT count(*) FROM delta.sales.orders").rows == [(15,)]
        [(sql,)] = engine.con.execute(
            "SELECT sql FROM duckdb_views() WHERE database_name = 'delta' AND view_name = 'orders'"
        ).fetchall()
        assert "read_parquet" in sql  # the fast path, not an Arrow dataset
        assert engine.query("SELECT count(*) FROM iceberg.sales.orders").rows == [(15,)]
        [(sql,)] = engine.con.execute(
            "SELECT sql FROM duckdb_views() "
            "WHERE database_name = 'iceberg' AND view_name = 'orders'"
        ).fetchall()
        assert "read_parquet" in sql
        lake_dir = store.bucket_path(settings.lake_bucket)
        for fn in ("read_parquet", "read_text", "glob", "parquet_metadata"):
            with pytest.raises(SqlError):  # refused, or (glob) not even parsed
                engine.query(f"SELECT * FROM {fn}('{lake_dir}/sales/orders/*')")
        assert engine.query("SELECT count(*) FROM range(3)").rows == [(3,)]
    finally:
        engine.close()
