"""SQL: one aggregate over a 10M-row Delta table, the embedded engine vs raw DuckDB.

Both read the same Parquet files and return Arrow; the difference is what
``lakehouse.sql.SqlEngine`` adds (parsing the statement, opening the Delta log, attaching the
snapshot's files, the locked-down connection). A fresh engine per query is what
``lakewire sql --local`` and ``POST /api/sql`` do, so that is the headline; a warm engine is
reported too. Also: the time to the first page of ``SELECT *`` through ``POST /api/sql``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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


def _bytes_read(query: Callable[[], object]) -> int:
    """Bytes this process read through system calls while ``query`` ran (DuckDB reads Parquet
    with pread: cached or not, every byte it asks for is counted)."""

    def rchar() -> int:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
        return 0

    before = rchar()
    query()
    return rchar() - before


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

    def embedded() -> tuple[float, list[dict[str, object]]]:
        t = time.perf_counter()
        engine = SqlEngine(settings, store)
        try:
            out = engine.arrow(lake_sql).to_pylist()
        finally:
            engine.close()
        return time.perf_counter() - t, out

    def raw() -> tuple[float, list[dict[str, object]]]:
        t = time.perf_counter()
        con = duckdb.connect()
        try:
            out = con.execute(raw_sql, {"files": files}).fetch_arrow_table().to_pylist()
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
        engine.arrow(lake_sql)
        con.execute(raw_sql, {"files": files}).fetch_arrow_table()
        for _ in range(reps):
            t = time.perf_counter()
            engine.arrow(lake_sql)
            warm_lake.append(time.perf_counter() - t)
            t = time.perf_counter()
            con.execute(raw_sql, {"files": files}).fetch_arrow_table()
            warm_raw.append(time.perf_counter() - t)
    finally:
        engine.close()
        con.close()

    first_page = _first_page_via_api(settings, ref.qualified, reps)
    # Pushdown: a selective filter on the (ordered) id reads a fraction of what a full scan
    # reads. Bytes read = this process's read syscalls (/proc/self/io rchar) during the query.
    selective_sql = f"SELECT sum(amount) AS s FROM {ref.qualified} WHERE id < {rows // 100}"
    full_sql = f"SELECT sum(amount) AS s FROM {ref.qualified}"
    engine = SqlEngine(settings, store)
    try:
        engine.arrow(full_sql)  # footers and the view: not part of either figure
        full_bytes = _bytes_read(lambda: engine.arrow(full_sql))
        selective_bytes = _bytes_read(lambda: engine.arrow(selective_sql))
    finally:
        engine.close()

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
    result.add(
        Metric(
            "api_first_page_s",
            median(first_page),
            "s",
            1.0,
            "goal: first page of SELECT * through POST /api/sql within 1 s",
        )
    )
    result.add(
        Metric(
            "selective_filter_bytes_read",
            selective_bytes / 1e6,
            "MB",
            full_bytes / 1e6,
            f"full scan MB read (filter: id < {rows // 100}, 1% of rows)",
        )
    )
    result.notes.append(
        f"bytes read: full scan {full_bytes / 1e6:.1f} MB, 1% filter {selective_bytes / 1e6:.1f} MB"
    )
    if not same:
        result.notes.append("WARNING: the two engines returned different results")
    return result


def _first_page_via_api(settings: Settings, table: str, reps: int) -> list[float]:
    """Seconds from ``POST /api/sql`` of ``SELECT *`` to its first page (500 rows), in process."""
    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from storage_service.app import create_app

    key = "bench-sql-key-0123456789abcdefgh"
    api_settings = settings.model_copy(update={"api_key": SecretStr(key)})
    times = []
    with TestClient(create_app(api_settings)) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        for _ in range(reps):
            t = time.perf_counter()
            resp = client.post("/api/sql", json={"statement": f"SELECT * FROM {table}"})
            resp.raise_for_status()
            assert len(resp.json()["rows"]) == min(500, settings.sql_max_rows)
            times.append(time.perf_counter() - t)
    return times


def _close(a: list[dict[str, object]], b: list[dict[str, object]]) -> bool:
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b, strict=True):
        for x, y in zip(ra.values(), rb.values(), strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if abs(x - y) > 1e-6 * max(1.0, abs(x)):
                    return False
            elif x != y:
                return False
    return True
