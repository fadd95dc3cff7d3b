"""Ingestion into real Delta and Iceberg tables: exactly-once, evolution, merge, overwrite, delete.

Every test runs against both formats; rows are read back through the SQL engine users query.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lakehouse.objectstore import LocalObjectStore, open_object_store
from lakehouse.quarantine import find_quarantined
from lakehouse.routes import Route, parse_routes
from lakehouse.settings import Settings
from lakehouse.sql import SqlEngine
from lakehouse.tables import TableRef, open_target
from pipelines.ingestion import ingest_batch
from pipelines.reconcile import current_source
from tests.helpers import csv_bytes, land

FORMATS = ["delta", "iceberg"]


@pytest.fixture
def local(tmp_path: Path) -> tuple[Settings, LocalObjectStore]:
    settings = Settings(data_dir=tmp_path / "data")
    store = open_object_store(settings)
    for bucket in ("landing", "lake"):
        store.create_bucket(bucket)
    return settings, store  # type: ignore[return-value]


def route(fmt: str, extra: str = "") -> Route:
    return parse_routes(
        f"routes:\n  - {{name: r, glob: 'orders/*', format: {fmt}, table: sales.orders{extra}}}\n"
    )[0]


def query(settings: Settings, store: Any, sql: str) -> list[tuple[Any, ...]]:
    engine = SqlEngine(settings, store)
    try:
        return engine.query(sql).rows
    finally:
        engine.close()


@pytest.mark.parametrize("fmt", FORMATS)
def test_append_carries_lineage_and_never_doubles(fmt: str, local: Any) -> None:
    settings, store = local
    r = route(fmt)
    ref = r.table_for("orders/a.csv")
    a = land(store, "landing", "orders/a.csv", csv_bytes(10))
    b = land(store, "landing", "orders/b.csv", csv_bytes(5, start=10))
    report = ingest_batch(settings, store, ref, [a, b], "run-1", route=r)
    assert report.rows == 15 and len(report.ingested) == 2

    # The same batch again (a re-run, a redelivered batch, a duplicate event): nothing added.
    again = ingest_batch(settings, store, ref, [a, b, a], "run-2", route=r)
    assert again.rows == 0 and set(again.skipped) == {a.uri, b.uri}
    t = f"{fmt}.sales.orders"
    assert query(settings, store, f"SELECT count(*) FROM {t}") == [(15,)]
    lineage = query(
        settings,
        store,
        f"SELECT _source_uri, _source_etag, _run_id, count(*), min(_ingested_at) IS NOT NULL "
        f"FROM {t} GROUP BY ALL ORDER BY 1",
    )
    assert lineage == [(a.uri, a.etag, "run-1", 10, True), (b.uri, b.etag, "run-1", 5, True)]

    # New content under the same key is new data; the same bytes re-uploaded are not.
    a2 = land(store, "landing", "orders/a.csv", csv_bytes(3, start=100))
    assert ingest_batch(settings, store, ref, [a2], "run-3", route=r).rows == 3
    a3 = land(store, "landing", "orders/a.csv", csv_bytes(3, start=100))
    assert a3.etag == a2.etag
    assert ingest_batch(settings, store, ref, [a3], "run-4", route=r).rows == 0
    assert query(settings, store, f"SELECT count(*) FROM {t}") == [(18,)]
    assert open_target(settings, store, ref).row_count() == 18


@pytest.mark.parametrize("fmt", FORMATS)
def test_new_nullable_column_is_added_and_type_conflict_quarantines(fmt: str, local: Any) -> None:
    settings, store = local
    r = route(fmt)
    ref = r.table_for("orders/a.csv")
    first = land(store, "landing", "orders/a.csv", csv_bytes(4))
    ingest_batch(settings, store, ref, [first], "run-1", route=r)

    wider = land(store, "landing", "orders/b.csv", csv_bytes(2, start=4, extra_col="channel"))
    clash = land(store, "landing", "orders/c.csv", b"id,amount,name\nnot-a-number,1.0,x\n")
    report = ingest_batch(settings, store, ref, [wider, clash], "run-2", route=r)
    assert report.ingested == [wider.uri] and report.rows == 2
    assert report.quarantined[clash.uri].kind == "schema_conflict"
    assert "column 'id'" in report.quarantined[clash.uri].reason
    t = f"{fmt}.sales.orders"
    assert query(settings, store, f"SELECT count(*), count(channel) FROM {t}") == [(6, 2)]

    strict = route(fmt, ", evolution: {add_columns: false}")
    more = land(store, "landing", "orders/d.csv", csv_bytes(1, start=9, extra_col="coupon"))
    report = ingest_batch(settings, store, ref, [more], "run-3", route=strict)
    assert report.quarantined[more.uri].kind == "schema_conflict"
    assert "'coupon' is not in the table" in report.quarantined[more.uri].reason


@pytest.mark.parametrize("fmt", FORMATS)
def test_objects_of_one_shape_fit_together_and_only_the_one_at_fault_is_quarantined(
    fmt: str, local: Any
) -> None:
    """Small objects read with the same shape are cast to the table as one frame; a value one
    of them cannot store still quarantines that object alone, naming its own row."""
    settings, store = local
    r = route(fmt)
    ref = r.table_for("orders/a.csv")
    first = land(store, "landing", "orders/a.csv", b"id,qty\n1,2\n")
    ingest_batch(settings, store, ref, [first], "run-1", route=r)  # qty: an integer column
    bodies = [b"id,qty\n2,3.0\n3,4.0\n", b"id,qty\n4,5.0\n5,6.5\n", b"id,qty\n6,7.0\n"]
    objs = [land(store, "landing", f"orders/f{i}.csv", b) for i, b in enumerate(bodies)]
    report = ingest_batch(settings, store, ref, objs, "run-2", route=r)
    assert report.ingested == [objs[0].uri, objs[2].uri] and report.rows == 3
    assert list(report.quarantined) == [objs[1].uri]
    assert "column 'qty' row 2: 6.5" in report.quarantined[objs[1].uri].reason
    t = f"{fmt}.sales.orders"
    rows = query(settings, store, f"SELECT id, qty, _source_uri FROM {t} ORDER BY id")
    assert rows == [
        (1, 2, first.uri),
        (2, 3, objs[0].uri),
        (3, 4, objs[0].uri),
        (6, 7, objs[2].uri),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_merge_mode_upserts_by_key(fmt: str, local: Any) -> None:
    settings, store = local
    r = route(fmt, ", mode: merge, merge_keys: [id]")
    ref = r.table_for("orders/a.csv")
    one = land(store, "landing", "orders/1.csv", b"id,name\n1,ann\n2,bob\n")
    ingest_batch(settings, store, ref, [one], "run-1", route=r)
    # Two objects in one batch touching the same key: the later one wins.
    two = land(store, "landing", "orders/2.csv", b"id,name\n2,bobby\n3,cy\n")
    three = land(store, "landing", "orders/3.csv", b"id,name\n3,cyril\n")
    ingest_batch(settings, store, ref, [two, three], "run-2", route=r)
    ingest_batch(settings, store, ref, [two, three], "run-3", route=r)  # re-run: no change
    rows = query(settings, store, f"SELECT id, name FROM {fmt}.sales.orders ORDER BY id")
    assert rows == [(1, "ann"), (2, "bobby"), (3, "cyril")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_overwrite_replaces_only_the_batch_partitions(fmt: str, local: Any) -> None:
    settings, store = local
    r = route(fmt, ", mode: overwrite, partition_by: [day]")
    ref = r.table_for("orders/a.csv")
    a = land(store, "landing", "orders/a.csv", b"day,v\n2024-01-01,1\n2024-01-02,2\n")
    ingest_batch(settings, store, ref, [a], "run-1", route=r)
    b = land(store, "landing", "orders/b.csv", b"day,v\n2024-01-02,20\n2024-01-02,21\n")
    ingest_batch(settings, store, ref, [b], "run-2", route=r)
    rows = query(settings, store, f"SELECT day, v FROM {fmt}.sales.orders ORDER BY day, v")
    assert [(str(d), v) for d, v in rows] == [
        ("2024-01-01", 1),
        ("2024-01-02", 20),
        ("2024-01-02", 21),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_removed_object_rows_are_deleted_when_the_route_says_so(fmt: str, local: Any) -> None:
    settings, store = local
    r = route(fmt, ", on_delete: delete_rows")
    ref = r.table_for("orders/a.csv")
    a = land(store, "landing", "orders/a.csv", csv_bytes(3))
    b = land(store, "landing", "orders/b.csv", csv_bytes(2, start=3))
    ingest_batch(settings, store, ref, [a, b], "run-1", route=r)
    store.delete("landing", "orders/a.csv")
    gone = type(a)(a.bucket, a.key, "", f"{int(a.sequencer, 16) + 10:016X}")
    report = ingest_batch(settings, store, ref, [], "run-2", route=r, removed=[gone])
    assert report.removed == [a.uri]
    assert ingest_batch(settings, store, ref, [], "run-3", route=r, removed=[gone]).removed == []
    assert query(settings, store, f"SELECT count(*) FROM {fmt}.sales.orders") == [(2,)]
    # The old create event replayed after the delete stays deleted ...
    assert ingest_batch(settings, store, ref, [a], "run-4", route=r).rows == 0
    # ... but the same bytes uploaded again after the delete are data again.
    again = land(store, "landing", "orders/a.csv", csv_bytes(3))
    assert again.etag == a.etag
    assert ingest_batch(settings, store, ref, [again], "run-5", route=r).rows == 3

    # The default policy ignores removals.
    ignore = route(fmt)
    assert (
        ingest_batch(settings, store, ref, [], "run-6", route=ignore, removed=[gone]).removed == []
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_ndjson_and_parquet_objects_land_in_one_commit(
    fmt: str, local: Any, tmp_path: Path
) -> None:
    import polars as pl

    settings, store = local
    r = route(fmt)
    ref = r.table_for("orders/a")
    pq = tmp_path / "x.parquet"
    pl.DataFrame({"id": [1, 2], "name": ["a", "b"]}).write_parquet(pq)
    p = land(store, "landing", "orders/x.parquet", pq.read_bytes())
    body = "\n".join(json.dumps({"id": i, "name": f"n{i}"}) for i in (3, 4, 5)).encode()
    n = land(store, "landing", "orders/y.jsonl", body)
    report = ingest_batch(settings, store, ref, [p, n], "run-1", route=r)
    assert report.rows == 5 and not report.quarantined
    assert query(settings, store, f"SELECT sum(id) FROM {fmt}.sales.orders") == [(15,)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_large_object_streams_into_one_commit_and_a_bad_tail_quarantines(
    fmt: str, local: Any
) -> None:
    settings, store = local
    settings = settings.model_copy(
        update={"ingest_stream_threshold_bytes": 10_000, "ingest_stream_chunk_rows": 1000}
    )
    r = route(fmt)
    ref = r.table_for("orders/a.csv")
    big = land(store, "landing", "orders/big.csv", csv_bytes(20_000))
    small = land(store, "landing", "orders/small.csv", csv_bytes(5, start=50_000))
    report = ingest_batch(settings, store, ref, [big, small], "run-1", route=r)
    assert report.rows == 20_005 and len(report.ingested) == 2
    assert query(
        settings, store, f"SELECT count(*), count(DISTINCT id) FROM {fmt}.sales.orders"
    ) == [(20_005, 20_005)]
    # A large object that goes bad after its first chunks: never half-written, quarantined,
    # and the rest of the batch still commits.
    bad_body = csv_bytes(20_000, start=100_000) + b"oops,not,a,row,at,all\n"
    bad = land(store, "landing", "orders/bad.csv", bad_body)
    ok = land(store, "landing", "orders/ok.csv", csv_bytes(7, start=200_000))
    report = ingest_batch(settings, store, ref, [bad, ok], "run-2", route=r)
    assert report.ingested == [ok.uri] and bad.uri in report.quarantined
    assert find_quarantined(settings, store, "landing", "orders/bad.csv") is not None
    assert query(settings, store, f"SELECT count(*) FROM {fmt}.sales.orders") == [(20_012,)]


def test_default_route_for_a_table_name_only(local: Any) -> None:
    """The benchmark entry point: ingest_batch(settings, store, ref, sources, run_id)."""
    settings, store = local
    ref = TableRef("delta", "bench", "t")
    a = land(store, "landing", "x/a.csv", csv_bytes(100))
    assert ingest_batch(settings, store, ref, [a], "run-1").rows == 100
    assert ingest_batch(settings, store, ref, [a], "run-2").rows == 0
    # current_source names an object as its event would (content MD5 etag on local disk).
    store.put("landing", "x/b.csv", csv_bytes(5, start=500))
    b = current_source(store, "landing", "x/b.csv")
    assert ingest_batch(settings, store, ref, [b], "run-3").rows == 5
    # A version that is not the object's current content is reported, never written.
    stale = type(b)(b.bucket, b.key, "0" * 32, b.sequencer)
    assert ingest_batch(settings, store, ref, [stale], "run-4").superseded == [stale.uri]


@pytest.mark.parametrize("fmt", FORMATS)
def test_large_bad_object_in_merge_mode_quarantines(fmt: str, local: Any) -> None:
    settings, store = local
    settings = settings.model_copy(update={"ingest_stream_threshold_bytes": 10_000})
    r = route(fmt, ", mode: merge, merge_keys: [id]")
    ref = r.table_for("orders/a.csv")
    bad = land(store, "landing", "orders/bad.csv", csv_bytes(5000) + b"x,y,z,w\n")
    ok = land(store, "landing", "orders/ok.csv", csv_bytes(3))
    report = ingest_batch(settings, store, ref, [bad, ok], "run-1", route=r)
    assert report.ingested == [ok.uri] and report.quarantined[bad.uri].kind == "unparseable"
    assert open_target(settings, store, ref).row_count() == 3


def test_large_object_rewritten_since_its_event_is_superseded(local: Any) -> None:
    settings, store = local
    settings = settings.model_copy(update={"ingest_stream_threshold_bytes": 10_000})
    ref = TableRef("delta", "sales", "orders")
    old = land(store, "landing", "orders/big.csv", csv_bytes(2000))
    new = land(store, "landing", "orders/big.csv", csv_bytes(2000, start=5000))
    report = ingest_batch(settings, store, ref, [old], "run-1")
    assert report.superseded == [old.uri] and report.rows == 0
    assert ingest_batch(settings, store, ref, [new], "run-2").rows == 2000
