"""Real-world-shaped files read right with no route options (issue 9, item 4), and columns that
widen over time (item 6): null tokens, ISO dates, messy headers, compressed and JSON objects,
nested JSON, BOM/Latin-1/UTF-16, late type changes, large objects read with the same options.

Every file is generated here, shaped like what people's tools export (the palmerpenguins raw
CSV, pandas/Excel exports, JSON array dumps, gzip'd logs). Rows are read back through the SQL
engine users query.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lakehouse.formats import (
    NULL_TOKENS,
    BadObject,
    CsvOptions,
    ObjectReader,
    ReadOptions,
    column_names,
    detect_format,
    detect_object,
    schema_changes,
    target_schema,
)
from lakehouse.objectstore import LocalObjectStore, open_object_store
from lakehouse.routes import CATCH_ALL, Evolution, Route, parse_routes
from lakehouse.settings import Settings
from lakehouse.sql import SqlEngine
from lakehouse.tables import ORIGINAL_NAME_KEY, TableRef, delta_table_uri, open_target
from pipelines.ingestion import ingest_batch
from tests.helpers import land

FORMATS = ["delta", "iceberg"]

# The head of palmerpenguins' raw CSV, as exported (NA for missing values, ISO dates, headers
# with spaces, parentheses, camelCase and a slash).
PENGUINS = "\n".join(
    [
        "studyName,Sample Number,Species,Region,Island,Stage,Individual ID,Clutch Completion,"
        "Date Egg,Culmen Length (mm),Culmen Depth (mm),Flipper Length (mm),Body Mass (g),Sex,"
        "Delta 15 N (o/oo),Delta 13 C (o/oo),Comments",
        'PAL0708,1,Adelie Penguin (Pygoscelis adeliae),Anvers,Torgersen,"Adult, 1 Egg Stage",'
        "N1A1,Yes,2007-11-11,39.1,18.7,181,3750,MALE,NA,NA,Not enough blood for isotopes.",
        'PAL0708,2,Adelie Penguin (Pygoscelis adeliae),Anvers,Torgersen,"Adult, 1 Egg Stage",'
        "N1A2,Yes,2007-11-11,39.5,17.4,186,3800,FEMALE,8.94956,-24.69454,NA",
        'PAL0708,3,Adelie Penguin (Pygoscelis adeliae),Anvers,Torgersen,"Adult, 1 Egg Stage",'
        "N2A1,Yes,2007-11-16,40.3,18,195,3250,FEMALE,8.36821,-25.33302,NA",
        'PAL0708,4,Adelie Penguin (Pygoscelis adeliae),Anvers,Torgersen,"Adult, 1 Egg Stage",'
        "N2A2,Yes,2007-11-16,NA,NA,NA,NA,NA,NA,NA,Adult not sampled.",
        "",
    ]
).encode()


class ReadRoute(Route):
    """A route with the ``read:`` options (``ReadOptions``) that ingestion looks for."""

    read: ReadOptions = ReadOptions()


@pytest.fixture
def local(tmp_path: Path) -> tuple[Settings, LocalObjectStore]:
    settings = Settings(data_dir=tmp_path / "data")
    store = open_object_store(settings)
    for bucket in ("landing", "lake"):
        store.create_bucket(bucket)
    return settings, store  # type: ignore[return-value]


def query(settings: Settings, store: Any, sql: str) -> list[tuple[Any, ...]]:
    engine = SqlEngine(settings, store)
    try:
        return engine.query(sql).rows
    finally:
        engine.close()


def catch_all(fmt: str = "delta", **read: Any) -> Route:
    """The built-in catch-all route (landing/<dataset>/**, format by extension), in ``fmt``."""
    fields = CATCH_ALL.model_dump(by_alias=True) | {"format": fmt}
    return ReadRoute.model_validate(fields | {"read": read}) if read else Route(**fields)


def frame(key: str, body: bytes, **kwargs: Any) -> pl.DataFrame:
    result = ObjectReader(**kwargs).read(key, body)
    assert result.frame is not None
    return result.frame


# -- a real export, end to end --------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_penguins_export_lands_typed_with_sql_safe_names(fmt: str, local: Any) -> None:
    settings, store = local
    route = catch_all(fmt)
    src = land(store, "landing", "penguins/raw/penguins_raw.csv", PENGUINS)
    ref = route.table_for(src.key)
    report = ingest_batch(settings, store, ref, [src], "run-1", route=route)
    assert report.rows == 4 and not report.quarantined
    target = open_target(settings, store, ref)
    schema = target.schema()
    assert schema is not None
    assert schema["culmen_length_mm"] == pl.Float64 and schema["body_mass_g"] == pl.Int64
    assert schema["delta_15_n_o_oo"] == pl.Float64 and schema["date_egg"] == pl.Date
    assert schema["study_name"] == pl.String and schema["individual_id"] == pl.String
    t = f"{fmt}.default.penguins"
    rows = query(
        settings,
        store,
        f"SELECT round(avg(culmen_length_mm), 2), count(culmen_length_mm), "
        f"count(delta_15_n_o_oo), min(date_egg), count(comments) FROM {t}",
    )
    assert [(r[0], r[1], r[2], str(r[3]), r[4]) for r in rows] == [(39.63, 3, 2, "2007-11-11", 2)]
    # A later export with the same headers lands in the same columns; a new header is added.
    more = PENGUINS.replace(b",Comments\n", b",Comments,Nest Site\n").replace(b"\nPAL", b"\nPAX")
    more = b"\n".join(
        line + b",A" if line.startswith(b"PAX") else line for line in more.split(b"\n")
    )
    src2 = land(store, "landing", "penguins/raw/more.csv", more)
    report = ingest_batch(settings, store, ref, [src2], "run-2", route=route)
    assert report.rows == 4 and not report.quarantined, report.quarantined
    assert query(settings, store, f"SELECT count(*), count(nest_site) FROM {t}") == [(8, 4)]
    assert schema_changes(schema, open_target(settings, store, ref).schema() or schema) == [
        "added column nest_site (String)"
    ]

    # The table records its naming and each column's header in the exports: the first header
    # a column had, kept across later commits, and the header of a column added later.
    assert target.column_naming() == "snake_case"
    assert original_names(settings, store, ref) == {
        "culmen_length_mm": "Culmen Length (mm)",
        "study_name": "studyName",
        "delta_15_n_o_oo": "Delta 15 N (o/oo)",
        "nest_site": "Nest Site",
    }


def original_names(settings: Settings, store: Any, ref: TableRef) -> dict[str, str]:
    """The original headers a table records for some of its renamed columns: Delta column
    metadata (``lakewire.original_name``, and ``comment``), Iceberg field docs."""
    wanted = ("culmen_length_mm", "study_name", "delta_15_n_o_oo", "nest_site")
    if ref.format == "delta":
        dt = DeltaTable(delta_table_uri(settings, store, ref))
        assert dt.metadata().configuration["lakewire.column_names"] == "snake_case"
        meta = {f.name: f.metadata for f in dt.schema().fields}
        assert all(meta[c]["comment"] == meta[c][ORIGINAL_NAME_KEY] for c in wanted)
        assert meta["species"][ORIGINAL_NAME_KEY] == "Species"  # unchanged names too
        return {c: meta[c][ORIGINAL_NAME_KEY] for c in wanted}
    from lakehouse.iceberg import load_table

    table = load_table(settings, store, ref)
    assert table is not None and table.properties["lakewire.column_names"] == "snake_case"
    return {c: str(table.schema().find_field(c).doc) for c in wanted}


def test_existing_table_keeps_its_column_names(local: Any) -> None:
    """DECISIONS: a table created before normalisation keeps its names, so no table splits."""
    settings, store = local
    route = catch_all()
    ref = route.table_for("legacy/x.csv")
    uri = delta_table_uri(settings, store, ref)
    old = pa.table({"Sample Number": [1], "Body Mass (g)": [3750]})
    write_deltalake(uri, old, storage_options=store.storage_options() or None)
    target = open_target(settings, store, ref)
    assert target.column_naming() == "as_is"
    src = land(store, "landing", "legacy/x.csv", b"Sample Number,Body Mass (g)\n2,3800\n3,NA\n")
    report = ingest_batch(settings, store, ref, [src], "run-1", route=route)
    assert report.rows == 2 and not report.quarantined
    schema = open_target(settings, store, ref).schema()
    assert schema is not None and schema.names()[:2] == ["Sample Number", "Body Mass (g)"]
    assert "sample_number" not in schema


# -- null tokens, dates, names --------------------------------------------------------------------
def test_null_tokens_people_write_are_nulls() -> None:
    assert set(NULL_TOKENS) == {"", "NA", "N/A", "NaN", "null", "NULL", "None", "-"}
    lines = ["x,y,label"] + [f"{tok},{i}.5,{tok}" for i, tok in enumerate(NULL_TOKENS)]
    lines += ["7,1.25,seven", "-3,-2.5,neg"]
    df = frame("a.csv", ("\n".join(lines) + "\n").encode())
    assert df.schema["x"] == pl.Int64 and df.schema["y"] == pl.Float64
    assert df["x"].null_count() == len(NULL_TOKENS) and df["x"].drop_nulls().to_list() == [7, -3]
    assert df["label"].drop_nulls().to_list() == ["seven", "neg"]
    # A route can replace the list (here: only NA is a null; "-" stays text).
    kept = frame("a.csv", b"x,y\nNA,1\n-,2\n", csv=CsvOptions(null_values=["NA"]))
    assert kept["x"].to_list() == [None, "-"]


def test_iso_dates_and_timestamps_become_typed() -> None:
    body = (
        b"d,ts,ts_frac,ts_zoned,ts_offset,dmy,mixed_zone,late_text\n"
        b"2024-01-31,2024-01-31 10:00:00,2024-01-31T10:00:00.5,2024-01-31T10:00:00Z,"
        b"2024-01-31T12:00:00+02:00,01/02/2024,2024-01-31T10:00:00Z,2024-01-31\n"
        b"NA,2024-02-01T11:30,2024-02-01T11:30:00.123456,2024-02-01T11:30:00Z,"
        b"2024-02-01T11:30:00-0500,02/02/2024,2024-01-31T10:00:00,soon\n"
    )
    df = frame("t.csv", body)
    assert df.schema["d"] == pl.Date and df["d"].to_list()[1] is None
    assert df.schema["ts"] == pl.Datetime("us") and df.schema["ts_frac"] == pl.Datetime("us")
    assert df.schema["ts_zoned"] == pl.Datetime("us", "UTC")
    assert df.schema["ts_offset"] == pl.Datetime("us", "UTC")
    assert str(df["ts_offset"][0]) == "2024-01-31 10:00:00+00:00"
    # Only ISO forms are read as dates: 01/02/2024 may be either day or month first.
    for col in ("dmy", "mixed_zone", "late_text"):
        assert df.schema[col] == pl.String, col
    # Off by route option.
    off = frame("t.csv", body, options=ReadOptions(try_parse_dates=False))
    assert off.schema["d"] == pl.String
    # JSON text too.
    js = frame("t.json", b'[{"d": "2024-01-31", "at": "2024-01-31T10:00:00Z"}]')
    assert js.schema == pl.Schema({"d": pl.Date(), "at": pl.Datetime("us", "UTC")})


def test_column_names_are_sql_safe_snake_case_and_unique() -> None:
    headers = ["Culmen Length (mm)", "studyName", "HTTPStatus", "userID", "Delta 15 N (o/oo)"]
    headers += ["iso3166Code", "3D model", "a b", "a_b", "", "Größe", "% change", "Item #", "_id"]
    assert column_names(headers) == [
        "culmen_length_mm",
        "study_name",
        "http_status",
        "user_id",
        "delta_15_n_o_oo",
        "iso3166_code",
        "col_3d_model",
        "a_b",
        "a_b_2",
        "column_10",
        "grosse",
        "pct_change",
        "item_num",
        "id",
    ]
    # Repeated headers (polars calls the second one a_duplicated_0) keep their header.
    result = ObjectReader().read("d.csv", b"Name,Name,name\n1,2,3\n")
    assert result.frame is not None and result.frame.columns == ["name", "name_2", "name_3"]
    assert result.columns == {"name": "Name", "name_2": "Name", "name_3": "name"}
    # Off by route option: the object's own names, no original names recorded.
    raw = ObjectReader(options=ReadOptions(normalize_columns=False), normalize=False)
    kept = raw.read("d.csv", b"Sample Number\n1\n")
    assert kept.frame is not None and kept.frame.columns == ["Sample Number"]
    assert kept.columns == {}


def test_declared_schema_accepts_the_original_header_or_the_normalised_name() -> None:
    dtypes = {"Sample Number": pl.String(), "body_mass_g": pl.Float64()}
    df = frame("p.csv", b"Sample Number,Body Mass (g)\n007,3750\n", dtypes=dtypes)
    assert df.schema == pl.Schema({"sample_number": pl.String, "body_mass_g": pl.Float64})
    assert df["sample_number"].to_list() == ["007"]
    js = frame("p.jsonl", b'{"Sample Number": 7, "when": "2024-01-01"}\n', dtypes=dtypes)
    assert js["sample_number"].to_list() == ["7"] and js.schema["when"] == pl.Date


# -- formats by extension -------------------------------------------------------------------------
def test_every_supported_extension_is_recognised_and_others_are_unknown_format() -> None:
    for key, fmt, comp in [
        ("a/b.csv", "csv", None),
        ("a/b.CSV.GZ", "csv", "gzip"),
        ("a/b.csv.zst", "csv", "zstd"),
        ("a/b.csv.bz2", "csv", "bzip2"),
        ("a/b.tsv", "tsv", None),
        ("a/b.txt", "csv", None),
        ("a/b.jsonl.gz", "ndjson", "gzip"),
        ("a/b.ndjson.gz", "ndjson", "gzip"),
        ("a/b.json", "json", None),
        ("a/b.parquet", "parquet", None),
        ("a/b.pq", "parquet", None),
    ]:
        obj = detect_object(key)
        assert (obj.format, obj.compression) == (fmt, comp), key
        assert detect_format(key) == fmt
    for key, hint in [
        ("a/b.xlsx", "export the sheet as CSV"),
        ("a/b.gz", "under gzip"),
        ("a/README", "(none)"),
        ("a/b.tar.gz", "tar archives"),
    ]:
        with pytest.raises(BadObject) as err:
            detect_format(key, "auto")
        assert err.value.kind == "unknown_format" and hint in err.value.reason, key
    assert detect_format("a/b.data", "csv") == "csv"  # a declared format wins


def _parquet(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf)
    return buf.getvalue()


def test_compressed_json_tsv_and_parquet_land_through_the_catch_all(local: Any) -> None:
    import zstandard

    settings, store = local
    route = catch_all()
    csv = b"order id,Amount,placed at\n1,9.5,2024-01-01T10:00:00Z\n2,NA,2024-01-02T10:00:00Z\n"
    rows = [{"order id": 3, "Amount": 1.0, "placed at": "2024-01-03T10:00:00Z"}]
    ndjson = (json.dumps(rows[0]) + "\n").encode()
    bodies = {
        "orders/a.csv.gz": gzip.compress(csv),
        "orders/b.csv.zst": zstandard.ZstdCompressor().compress(csv),
        "orders/c.csv.bz2": bz2.compress(csv),
        "orders/d.tsv": csv.replace(b",", b"\t"),
        "orders/e.jsonl.gz": gzip.compress(ndjson),
        "orders/f.ndjson.gz": gzip.compress(ndjson),
        "orders/g.json": json.dumps(rows * 2).encode(),  # a JSON array, as tools write .json
        "orders/h.json": ndjson,  # NDJSON named .json
        "orders/i.parquet": _parquet(pl.DataFrame({"order id": [4], "Amount": [2.0]})),
        "orders/j.csv": gzip.compress(csv),  # gzip'd with no .gz: recognised by its bytes
    }
    srcs = [land(store, "landing", k, v) for k, v in bodies.items()]
    ref = route.table_for("orders/a.csv.gz")
    report = ingest_batch(settings, store, ref, srcs, "run-1", route=route)
    assert not report.quarantined, report.quarantined
    assert report.rows == 2 * 5 + 1 + 1 + 2 + 1 + 1
    got = query(
        settings,
        store,
        "SELECT count(*), count(amount), count(placed_at), sum(order_id) FROM delta.default.orders",
    )
    # 16 rows: 5 CSVs of 2 (one NA amount each), 5 JSON rows of order 3, 1 Parquet row.
    assert got == [(16, 5 + 5 + 1, 10 + 5, 5 * 3 + 5 * 3 + 4)]
    schema = open_target(settings, store, ref).schema()
    assert schema is not None and schema["placed_at"] == pl.Datetime("us", "UTC")


def test_corrupt_compressed_object_is_quarantined_with_a_clear_reason(local: Any) -> None:
    settings, store = local
    route = catch_all()
    bad = land(store, "landing", "orders/x.csv.gz", b"\x1f\x8bthis is not gzip at all")
    ok = land(store, "landing", "orders/y.csv", b"id\n1\n")
    report = ingest_batch(settings, store, route.table_for(ok.key), [bad, ok], "r", route=route)
    assert report.ingested == [ok.uri]
    assert report.quarantined[bad.uri].kind == "unparseable"
    assert "not valid gzip data" in report.quarantined[bad.uri].reason


# -- nested JSON ----------------------------------------------------------------------------------
EVENTS = [
    {"id": 1, "user": {"name": "ann", "geo": {"lat": 52.5, "lon": 13.4}}, "tags": ["a", "b"]},
    {"id": 2, "user": {"name": "bob", "geo": None}, "tags": []},
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_nested_json_lands_as_structs(fmt: str, local: Any) -> None:
    settings, store = local
    route = catch_all(fmt)
    src = land(store, "landing", "events/e.json", json.dumps(EVENTS).encode())
    ref = route.table_for(src.key)
    report = ingest_batch(settings, store, ref, [src], "run-1", route=route)
    assert report.rows == 2 and not report.quarantined, report.quarantined
    schema = open_target(settings, store, ref).schema()
    assert schema is not None and isinstance(schema["user"], pl.Struct)
    rows = query(
        settings,
        store,
        f'SELECT "user".name, "user".geo.lat, len(tags) FROM {fmt}.default.events ORDER BY id',
    )
    assert rows == [("ann", 52.5, 2), ("bob", None, 0)]


def test_nested_json_flattened_by_route_option(local: Any) -> None:
    settings, store = local
    route = catch_all(json_flatten=True)
    body = "\n".join(json.dumps(e) for e in EVENTS).encode()
    src = land(store, "landing", "events/e.jsonl", body)
    ref = route.table_for(src.key)
    report = ingest_batch(settings, store, ref, [src], "run-1", route=route)
    assert report.rows == 2 and not report.quarantined, report.quarantined
    rows = query(
        settings,
        store,
        "SELECT user_name, user_geo_lat, user_geo_lon FROM delta.default.events ORDER BY id",
    )
    assert rows == [("ann", 52.5, 13.4), ("bob", None, None)]
    dt = DeltaTable(delta_table_uri(settings, store, ref))
    meta = {f.name: f.metadata for f in dt.schema().fields}
    assert meta["user_geo_lat"][ORIGINAL_NAME_KEY] == "user.geo.lat"


# -- encodings ------------------------------------------------------------------------------------
def test_bom_latin1_and_utf16_files(local: Any) -> None:
    settings, store = local
    text = "Name,City,Größe (cm)\nJosé,Zürich,180\nRenée,Montréal,NA\n"
    bom = frame("a.csv", b"\xef\xbb\xbf" + text.encode())
    assert bom.columns == ["name", "city", "grosse_cm"] and bom["city"][0] == "Zürich"
    utf16 = frame("a.csv", text.encode("utf-16"))  # what Excel's "Unicode text" writes
    assert utf16.equals(bom)
    bom_json = frame("a.jsonl", b'\xef\xbb\xbf{"a": 1}\n')
    assert bom_json["a"].to_list() == [1]

    # Latin-1 without the option: quarantined, saying where and what to set.
    route = catch_all()
    latin = land(store, "landing", "people/latin.csv", text.encode("latin-1"))
    ref = route.table_for(latin.key)
    report = ingest_batch(settings, store, ref, [latin], "run-1", route=route)
    reason = report.quarantined[latin.uri].reason
    assert report.quarantined[latin.uri].kind == "unparseable"
    assert "not valid UTF-8 text at byte" in reason and "(line 1)" in reason
    assert "csv.encoding" in reason and "latin1" in reason
    # With the route's encoding it lands.
    latin_route = parse_routes(
        "version: 2\nroutes:\n  - name: people\n    glob: 'people/**'\n"
        "    table: default.people\n    csv: {encoding: latin-1}\n"
    )[0]
    assert latin_route.csv.encoding == "latin1"
    report = ingest_batch(settings, store, ref, [latin], "run-2", route=latin_route)
    assert report.rows == 2 and not report.quarantined
    assert query(settings, store, "SELECT name, grosse_cm FROM delta.default.people") == [
        ("José", 180),
        ("Renée", None),
    ]
    # Bytes that are not even Windows-1252 say so.
    with pytest.raises(BadObject, match=r"not valid Windows-1252 text at byte 6 \(line 2\)"):
        frame("a.csv", b"a,b\nx,\x81\n", csv=CsvOptions(encoding="cp1252"))


# -- types that change late in a file, and over time ----------------------------------------------
def _late(value: str, amount: str = "2.5", rows: int = 12_000) -> bytes:
    lines = ["id,amount"] + [f"{i},{i}" for i in range(rows)] + [f"{value},{amount}"]
    return ("\n".join(lines) + "\n").encode()


def test_late_non_numeric_value_widens_by_default(local: Any) -> None:
    settings, store = local
    df = frame("late.csv", _late("oops"))
    assert df.schema == pl.Schema({"id": pl.String, "amount": pl.Float64})
    assert df.height == 12_001
    nd = "\n".join([json.dumps({"v": i}) for i in range(12_000)] + ['{"v": "n/a2"}']).encode()
    assert frame("late.jsonl", nd).schema["v"] == pl.String

    # Ingested into a table whose column is already an integer: quarantined naming the
    # column, row and value, the rest of the batch lands.
    route = catch_all()
    first = land(store, "landing", "late/a.csv", b"id,amount\n1,1.5\n")
    ref = route.table_for(first.key)
    ingest_batch(settings, store, ref, [first], "run-1", route=route)
    late = land(store, "landing", "late/b.csv", _late("oops"))
    ok = land(store, "landing", "late/c.csv", b"id,amount\n2,2\n")
    report = ingest_batch(settings, store, ref, [late, ok], "run-2", route=route)
    assert report.ingested == [ok.uri]
    rec = report.quarantined[late.uri]
    assert rec.kind == "schema_conflict"
    assert "column 'id' row 12001: 'oops' cannot be stored as Int64" in rec.reason


def test_late_value_quarantines_with_row_and_column_by_route_option(local: Any) -> None:
    strict = ReadOptions(mixed_types="quarantine")
    with pytest.raises(BadObject) as err:
        frame("late.csv", _late("oops"), options=strict)
    assert err.value.kind == "schema_conflict"
    assert "column 'id' row 12001: 'oops' is not Int64 like the first 10000 rows" in str(err.value)
    # Through a route's read options.
    settings, store = local
    route = catch_all(mixed_types="quarantine")
    src = land(store, "landing", "late/x.csv", _late("oops"))
    report = ingest_batch(settings, store, route.table_for(src.key), [src], "r", route=route)
    assert "row 12001" in report.quarantined[src.uri].reason
    # A late value that fits the column's type is no mixed type at all.
    assert frame("ok.csv", _late("12000", "7"), options=strict).schema["id"] == pl.Int64
    # An int column with a late float is a mixed type too (widen: float).
    assert frame("f.csv", _late("12000")).schema["amount"] == pl.Float64
    with pytest.raises(BadObject, match=r"column 'amount' row 12001: 2\.5 is not Int64"):
        frame("f.csv", _late("12000"), options=strict)


@pytest.mark.parametrize("fmt", FORMATS)
def test_int_column_widens_to_float(fmt: str, local: Any) -> None:
    settings, store = local
    route = catch_all(fmt)
    # One batch, a new table: one object's ints and another's floats make a float column.
    a = land(store, "landing", "prices/a.csv", b"sku,price\nA,10\nB,12\n")
    b = land(store, "landing", "prices/b.csv", b"sku,price\nC,9.99\n")
    ref = route.table_for(a.key)
    report = ingest_batch(settings, store, ref, [a, b], "run-1", route=route)
    assert report.rows == 3 and not report.quarantined
    assert report.schema is not None and report.schema["price"] == pl.Float64
    rows = query(settings, store, f"SELECT sum(price) FROM {fmt}.default.prices")
    assert rows[0][0] == pytest.approx(31.99)

    # A table whose column is already an integer: whole-number floats are stored, a fraction
    # is quarantined naming the value (the table's type does not change under it).
    ints = land(store, "landing", "counts/a.csv", b"sku,qty\nA,1\n")
    ref2 = route.table_for(ints.key)
    ingest_batch(settings, store, ref2, [ints], "run-2", route=route)
    whole = land(store, "landing", "counts/b.csv", b"sku,qty\nB,2.0\nC,NA\n")
    frac = land(store, "landing", "counts/c.csv", b"sku,qty\nD,3\nE,2.5\n")
    report = ingest_batch(settings, store, ref2, [whole, frac], "run-3", route=route)
    assert report.ingested == [whole.uri]
    assert (
        "column 'qty' row 2: 2.5 cannot be stored as Int64" in report.quarantined[frac.uri].reason
    )
    assert query(settings, store, f"SELECT sum(qty), count(*) FROM {fmt}.default.counts") == [
        (3, 3)
    ]


def test_batch_schema_widening_rules() -> None:
    schema, conflicts = target_schema(
        None,
        {
            "a": pl.Schema({"x": pl.Int64, "d": pl.Date, "n": pl.Null}),
            "b": pl.Schema({"x": pl.Float64(), "d": pl.Datetime("us"), "n": pl.Int64()}),
            "c": pl.Schema({"x": pl.String}),
        },
        add_columns=True,
    )
    assert schema == pl.Schema({"x": pl.Float64(), "d": pl.Datetime("us"), "n": pl.Int64()})
    assert list(conflicts) == ["c"] and "in another object of the batch" in conflicts["c"].reason


# -- large objects: the same options --------------------------------------------------------------
def test_large_objects_are_read_with_the_same_options(local: Any) -> None:
    settings, store = local
    settings = settings.model_copy(
        update={"ingest_stream_threshold_bytes": 2_000, "ingest_stream_chunk_rows": 500}
    )
    route = catch_all()
    lines = ["Order ID,Amount (EUR),placedAt,Note"]
    lines += [
        f"{i},{'NA' if i % 7 == 0 else i * 0.5},2024-01-01T10:00:00Z,n/a" for i in range(3000)
    ]
    body = ("\n".join(lines) + "\n").encode()
    small_body = ("\n".join(lines[:5]) + "\n").encode()
    srcs = [
        land(store, "landing", "big/a.csv.gz", gzip.compress(body)),  # inflates past the limit
        land(store, "landing", "big/b.csv", body),  # streamed from the file
        land(store, "landing", "big/c.csv", body.decode().encode("utf-16")),  # transcoded
        land(store, "landing", "big/d.csv", small_body),  # read whole
    ]
    ref = route.table_for("big/a.csv")
    report = ingest_batch(settings, store, ref, srcs, "run-1", route=route)
    assert not report.quarantined, report.quarantined
    assert report.rows == 3 * 3000 + 4
    schema = open_target(settings, store, ref).schema()
    assert schema is not None
    assert schema["amount_eur"] == pl.Float64 and schema["order_id"] == pl.Int64
    assert schema["placed_at"] == pl.Datetime("us", "UTC")
    assert query(settings, store, "SELECT count(*) - count(amount_eur) FROM delta.default.big") == [
        (3 * 429 + 1,)
    ]
    scanned = ObjectReader().scan("x.csv", store.local_file("landing", "big/b.csv"))
    assert scanned.lazy is not None and scanned.columns["amount_eur"] == "Amount (EUR)"


def test_declared_column_missing_from_a_parquet_object_is_null_large_or_small(
    local: Any,
) -> None:
    """A route schema naming a column the object lacks: no longer 'unparseable' when large."""
    settings, store = local
    settings = settings.model_copy(update={"ingest_stream_threshold_bytes": 5_000})
    route = parse_routes(
        "version: 2\nroutes:\n  - name: m\n    glob: 'm/**'\n    table: default.m\n"
        "    schema: {id: int64, amount: float64, coupon: string}\n"
    )[0]
    big = pl.DataFrame({"id": list(range(2000)), "amount": [1.0] * 2000})
    srcs = [
        land(store, "landing", "m/big.parquet", _parquet(big)),
        land(store, "landing", "m/small.parquet", _parquet(big.head(3))),
    ]
    assert store.head("landing", "m/big.parquet").size >= 5_000
    report = ingest_batch(settings, store, route.table_for("m/x"), srcs, "run-1", route=route)
    assert not report.quarantined, report.quarantined
    assert report.rows == 2003


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_column_renamed_at_the_source_keeps_filling_its_column(fmt: str, local: Any) -> None:
    settings, store = local
    route = catch_all(fmt).model_copy(
        update={"evolution": Evolution(renamed_columns={"Qty Ordered": "quantity"})}
    )
    first = land(store, "landing", "sales/a.csv", b"sku,Quantity\nA,1\nB,2\n")
    ref = route.table_for(first.key)
    ingest_batch(settings, store, ref, [first], "run-1", route=route)
    # The exporting tool renamed the header: the rows still land in `quantity`.
    later = land(store, "landing", "sales/b.csv", b"sku,Qty Ordered\nC,3\n")
    report = ingest_batch(settings, store, ref, [later], "run-2", route=route)
    assert report.rows == 1 and not report.quarantined
    assert report.schema_changes == ["renamed column Qty Ordered -> quantity"]
    schema = open_target(settings, store, ref).schema()
    assert schema is not None and "qty_ordered" not in schema
    t = f"{fmt}.default.sales"
    assert query(settings, store, f"SELECT sku, quantity FROM {t} ORDER BY sku") == [
        ("A", 1),
        ("B", 2),
        ("C", 3),
    ]
