"""POST /api/sql, GET /api/sql/catalog, DELETE /api/sql/{id}, downloads: against a live service
(its own process, as `lakewire up` runs it) over Delta and Iceberg tables the ingestion wrote."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from lakehouse.objectstore import open_object_store
from lakehouse.routes import parse_routes
from lakehouse.settings import Settings
from pipelines.ingestion import ingest_batch
from tests.helpers import (
    csv_bytes,
    land,
    service_process,
)

SLOW = "SELECT sum(a.i * b.i) FROM range(200000) a(i), range(200000) b(i)"


def write_tables(data_dir: Path, rows: int = 1200) -> None:
    settings = Settings(data_dir=data_dir)
    store = open_object_store(settings)
    for bucket in ("landing", "lake"):
        store.create_bucket(bucket)
    for fmt in ("delta", "iceberg"):
        r = parse_routes(
            "version: 2\nroutes:\n"
            f"  - {{name: r, glob: 'orders/*', format: {fmt}, table: sales.orders}}\n"
        )[0]
        ref = r.table_for("orders/a.csv")
        a = land(store, "landing", "orders/a.csv", csv_bytes(rows))
        ingest_batch(settings, store, ref, [a], "run-1", route=r)
        b = land(store, "landing", "orders/b.csv", csv_bytes(5, start=rows))
        ingest_batch(settings, store, ref, [b], "run-2", route=r)


@contextlib.contextmanager
def sql_service(tmp: Path, **env_extra: str) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """The service in its own process over tables written into ``tmp/data``: a client and the
    environment that points a ``lakewire`` command at it."""
    write_tables(tmp / "data")
    with service_process(tmp, **env_extra) as proc:
        yield proc.client(), proc.env


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    tmp = tmp_path_factory.mktemp("sqlapi")
    with sql_service(tmp, LAKEWIRE_SQL_TIMEOUT_SECONDS="6", LAKEWIRE_SQL_MAX_ROWS="1000") as (
        client,
        _,
    ):
        yield client


def sql(api: httpx.Client, statement: str, **extra: Any) -> httpx.Response:
    return api.post("/api/sql", json={"statement": statement, **extra})


@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
def test_query_pages_and_downloads(api: httpx.Client, fmt: str) -> None:
    r = sql(api, f"SELECT id, name FROM {fmt}.sales.orders ORDER BY id", limit=100)
    assert r.status_code == 200, r.text
    page = r.json()
    assert [c["name"] for c in page["columns"]] == ["id", "name"]
    assert page["columns"][0]["type"] == "int64"
    assert page["rows"][0][0] == 0 and len(page["rows"]) == 100
    assert page["row_count"] == 1000 and page["truncated"] is True  # 1205 rows, cap 1000
    assert page["elapsed_ms"] >= 0
    seen = [row[0] for row in page["rows"]]
    while page["next_page_token"]:
        page = api.post(
            "/api/sql", json={"page_token": page["next_page_token"], "limit": 300}
        ).json()
        seen += [row[0] for row in page["rows"]]
    assert seen == list(range(1000))
    qid = page["query_id"]
    csv = api.get(f"/api/sql/{qid}/download", params={"format": "csv"})
    assert csv.status_code == 200 and csv.text.splitlines()[0] == '"id","name"'
    assert len(csv.text.splitlines()) == 1001
    parquet = api.get(f"/api/sql/{qid}/download", params={"format": "parquet"})
    assert pq.read_table(io.BytesIO(parquet.content)).num_rows == 1000
    # The same query again on the long-lived service: the same rows (Iceberg used to be empty).
    again = sql(api, f"SELECT count(*) AS n FROM {fmt}.sales.orders").json()
    assert again["rows"] == [[1205]]
    assert sql(api, f"SELECT count(*) AS n FROM {fmt}.sales.orders").json()["rows"] == [[1205]]


def test_bad_sql_answers_with_message_and_position(api: httpx.Client) -> None:
    r = sql(api, "SELECT id\nFROM delta.sales.orders\nWHERE nope = 1")
    assert r.status_code == 400
    assert "nope" in r.json()["detail"]
    r = sql(api, "SELECT id FROM (SELECT 1")
    assert r.status_code == 400 and r.json()["line"] == 1 and r.json()["column"]
    r = sql(api, "SELECT * FROM delta.sales.missing")
    assert r.status_code == 404 and "does not exist" in r.json()["detail"]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM read_text('/etc/passwd')",
        "COPY (SELECT 1) TO '/tmp/lakewire-sql-api.csv'",
        "ATTACH '/tmp/lakewire-sql-api.db' AS x",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "DROP TABLE delta.sales.orders",
    ],
)
def test_api_never_reaches_the_host(api: httpx.Client, statement: str) -> None:
    r = sql(api, statement)
    assert r.status_code in (400, 403), r.text
    assert not Path("/tmp/lakewire-sql-api.csv").exists()


def test_catalog_tree(api: httpx.Client) -> None:
    tree = api.get("/api/sql/catalog").json()
    assert tree["engine"] == "embedded"
    names = {c["name"]: c for c in tree["catalogs"]}
    assert set(names) == {"delta", "iceberg", "hive"}
    hive = names.pop("hive")  # no hive_tables.yaml declares a table here (tests/test_sql_hive.py)
    assert hive["schemas"] == [] and hive["error"] is None
    for cat in names.values():
        [schema] = cat["schemas"]
        assert schema["name"] == "sales"
        [table] = schema["tables"]
        assert table["name"] == "orders"
        assert {"name": "id", "type": "bigint"} in table["columns"]
    assert api.get("/api/sql/catalog", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_time_travel_and_history_over_http(api: httpx.Client) -> None:
    hist = sql(api, 'SELECT version, rows_added FROM delta.sales."orders$history" ORDER BY 1')
    assert [r[1] for r in hist.json()["rows"] if r[1] is not None] == [1200, 5]
    r = sql(api, "SELECT count(*) FROM delta.sales.orders FOR VERSION AS OF 0")
    assert r.json()["rows"] == [[1200]]


def test_cancel_a_slow_query_while_the_service_keeps_answering(api: httpx.Client) -> None:
    answers: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: answers.append(sql(api, SLOW, query_id="slow-1")))
    worker.start()
    time.sleep(1.0)
    t0 = time.perf_counter()
    assert api.get("/healthz").status_code == 200
    assert sql(api, "SELECT 1 AS one").json()["rows"] == [[1]]
    assert time.perf_counter() - t0 < 2.0  # not blocked behind the slow query
    assert api.delete("/api/sql/slow-1").json()["cancelled"] is True
    worker.join(30)
    assert answers[0].status_code == 409 and "cancelled" in answers[0].json()["detail"]


def test_slow_query_times_out(api: httpx.Client) -> None:
    t0 = time.perf_counter()
    r = sql(api, SLOW)
    assert r.status_code == 408
    assert time.perf_counter() - t0 < 20
    assert sql(api, "SELECT 2 AS two").json()["rows"] == [[2]]
