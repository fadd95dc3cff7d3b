"""SQL: one aggregate over a 10M-row Delta table, the embedded engine vs raw DuckDB.

Both read the same Parquet files; the difference is what ``lakehouse.sql.SqlEngine`` adds
(opening the Delta log, handing DuckDB an Arrow dataset instead of letting it scan Parquet
itself). A fresh engine per query is what ``lakewire sql`` does, so that is the headline; a
warm engine (table already registered) is reported too.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
from deltalake import DeltaTable, write_deltalake

from bench.datagen import frame
from bench.results import Metric, Result, median
from lakehouse.objectstore import open_object_store
from lakehouse.settings import Settings
from lakehouse.sql import SqlEngine
from lakehouse.tables import TableRef, delta_table_uri

AGGREGATE = (
    "SELECT country, count(*) AS n, sum(amount) AS total, avg(quantity) AS avg_qty "
    "FROM {table} GROUP BY country ORDER BY country"
)


def run(work: Path, smoke: bool) -> Result:
    rows = 100_000 if smoke else 10_000_000
    reps = 2 if smoke else 5
    settings = Settings(data_dir=work / "data")
    store = open_object_store(settings)
    store.create_bucket(settings.lake_bucket)
    ref = TableRef("delta", "default", "x")
    uri = delta_table_uri(settings, store, ref)
    t0 = time.perf_counter()
    data = frame(rows).select("id", "country", "amount", "quantity")
    write_deltalake(uri, data.to_arrow(), mode="overwrite")
    del data
    setup_s = time.perf_counter() - t0
    files = DeltaTable(uri).file_uris()
    raw_sql = AGGREGATE.format(table="read_parquet($files)")
    lake_sql = AGGREGATE.format(table=ref.qualified)

    def embedded() -> tuple[float, list[tuple[object, ...]]]:
        t = time.perf_counter()
        engine = SqlEngine(settings, store)
        try:
            out = engine.query(lake_sql).rows
        finally:
            engine.close()
        return time.perf_counter() - t, out

    def raw() -> tuple[float, list[tuple[object, ...]]]:
        t = time.perf_counter()
        con = duckdb.connect()
        try:
            out = con.execute(raw_sql, {"files": files}).fetchall()
        finally:
            con.close()
        return time.perf_counter() - t, out

    cold_lake, cold_raw = [], []
    same = True
    for _ in range(reps):
        t_lake, r_lake = embedded()
        t_raw, r_raw = raw()
        cold_lake.append(t_lake)
        cold_raw.append(t_raw)
        same = same and _close(r_lake, r_raw)

    engine = SqlEngine(settings, store)
    con = duckdb.connect()
    warm_lake, warm_raw = [], []
    try:
        engine.query(lake_sql)
        con.execute(raw_sql, {"files": files}).fetchall()
        for _ in range(reps):
            t = time.perf_counter()
            engine.query(lake_sql)
            warm_lake.append(time.perf_counter() - t)
            t = time.perf_counter()
            con.execute(raw_sql, {"files": files}).fetchall()
            warm_raw.append(time.perf_counter() - t)
    finally:
        engine.close()
        con.close()

    result = Result(
        "sql",
        f"SQL: aggregate over a {rows:,}-row Delta table, embedded engine vs raw DuckDB",
        smoke,
        params={
            "rows": rows,
            "parquet_files": len(files),
            "repetitions": reps,
            "query": AGGREGATE,
            "table_write_s": round(setup_s, 2),
        },
    )
    result.add(
        Metric(
            "embedded_query_s",
            median(cold_lake),
            "s",
            median(cold_raw),
            "raw DuckDB read_parquet, fresh connection",
        ),
        Metric(
            "embedded_warm_query_s",
            median(warm_lake),
            "s",
            median(warm_raw),
            "raw DuckDB read_parquet, warm connection",
        ),
        Metric(
            "rows_per_s",
            rows / (median(cold_lake) or 1),
            "rows/s",
            rows / (median(cold_raw) or 1),
            "raw DuckDB rows/s",
        ),
    )
    if not same:
        result.notes.append("WARNING: the two engines returned different results")
    return result


def _close(a: list[tuple[object, ...]], b: list[tuple[object, ...]]) -> bool:
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b, strict=True):
        for x, y in zip(ra, rb, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if abs(x - y) > 1e-6 * max(1.0, abs(x)):
                    return False
            elif x != y:
                return False
    return True
