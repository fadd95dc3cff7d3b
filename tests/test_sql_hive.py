"""The ``hive`` catalog: real Parquet and CSV files under prefixes, declared in a file, queried
by three-part name on the embedded engine (local and S3 backends) and through ``POST /api/sql``;
Trino's statements from the same declarations, checked against the Hive connector's documented
``CREATE TABLE ... WITH (external_location, format, csv_separator, skip_header_line_count)``."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import SecretStr

from lakehouse.hive import HiveCatalog, HiveError, create_table_sql, parse_declarations
from lakehouse.objectstore import ObjectStore, open_object_store
from lakehouse.settings import Settings
from lakehouse.sql import SqlEngine, TableNotFound
from lakehouse.sql_guard import SqlError, SqlRefused
from lakehouse.sql_scope import scope_statement
from tests.helpers import NatsServer, Service, local_settings
from tests.s3servers import SeaweedFS

DECLARATIONS = """
tables:
  - schema: raw
    name: orders
    bucket: exports
    prefix: orders/
    format: parquet
  - schema: raw
    name: readings
    bucket: co2-data
    prefix: readings
    format: csv
    delimiter: ";"
  - schema: acme_co
    name: readings
    bucket: co2-data
    prefix: readings
    format: csv
    delimiter: ";"
    columns: {station: varchar, ppm: varchar}
"""


def parquet(ids: range) -> bytes:
    buf = io.BytesIO()
    table = pa.table(
        {
            "id": pa.array(list(ids), pa.int64()),
            "amount": [i * 1.5 for i in ids],
            "name": [f"n{i}" for i in ids],
        }
    )
    pq.write_table(table, buf)
    return buf.getvalue()


def fill(store: ObjectStore) -> None:
    """Two Parquet files, a CSV with a header, and what Hive skips: a marker file and a file
    in a sub-folder."""
    for bucket in ("exports", "co2-data", "lake"):
        store.create_bucket(bucket)
    store.put("exports", "orders/part-0.parquet", parquet(range(0, 3)))
    store.put("exports", "orders/part-1.parquet", parquet(range(3, 5)))
    store.put("exports", "orders/_SUCCESS", b"")
    store.put("exports", "orders/old/part-9.parquet", parquet(range(100, 110)))
    store.put("co2-data", "readings/day1.csv", b"station;ppm\nmauna;421.5\nbarrow;419\n")


def hive_settings(tmp_path: Path, **extra: Any) -> Settings:
    path = tmp_path / "hive_tables.yaml"
    path.write_text(DECLARATIONS)
    return Settings(data_dir=tmp_path / "data", hive_tables_file=path, **extra)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[SqlEngine]:
    settings = hive_settings(tmp_path)
    store = open_object_store(settings)
    fill(store)
    eng = SqlEngine(settings, store)
    yield eng
    eng.close()


ORDERS = "SELECT count(*), sum(amount), min(name) FROM hive.raw.orders"


def test_hive_tables_by_three_part_name_twice_and_new_files_seen(engine: SqlEngine) -> None:
    first = engine.query(ORDERS).rows
    assert first == [(5, sum(i * 1.5 for i in range(5)), "n0")]  # not _SUCCESS, not old/
    assert engine.query(ORDERS).rows == first  # the same engine, the same rows
    assert engine.query("SELECT * FROM hive.raw.readings ORDER BY station").rows == [
        ("barrow", "419"),
        ("mauna", "421.5"),  # CSV columns are varchar, as on Trino: cast in the query
    ]
    assert engine.query(
        "SELECT avg(CAST(ppm AS double)) FROM hive.raw.readings WHERE station <> 'x'"
    ).rows == [(420.25,)]

    engine.store.put("exports", "orders/part-2.parquet", parquet(range(5, 7)))
    engine.store.put("co2-data", "readings/day2.csv", b"station;ppm\nalert;418\n")
    assert engine.query("SELECT count(*) FROM hive.raw.orders").rows == [(7,)]
    assert engine.query("SELECT count(*) FROM hive.raw.readings").rows == [(3,)]

    with pytest.raises(SqlError, match="no versions"):
        engine.query("SELECT * FROM hive.raw.orders FOR VERSION AS OF 1")
    with pytest.raises(TableNotFound):
        engine.query("SELECT * FROM hive.raw.nope")
    with pytest.raises(SqlRefused):  # the lockdown holds: files are reached by name only
        engine.query("SELECT * FROM read_csv('readings/day1.csv')")


def test_hive_inspection(engine: SqlEngine) -> None:
    assert ("hive",) in engine.query("SHOW CATALOGS").rows
    assert engine.query("SHOW SCHEMAS FROM hive").rows == [
        ("information_schema",),
        ("acme_co",),
        ("raw",),
    ]
    assert engine.query("SHOW TABLES FROM hive.raw").rows == [("orders",), ("readings",)]
    described = engine.query("DESCRIBE hive.raw.orders").rows
    assert [(r[0], r[1]) for r in described] == [
        ("id", "bigint"),
        ("amount", "double"),
        ("name", "varchar"),
    ]
    assert engine.query("SHOW COLUMNS FROM hive.raw.readings").rows[0][:2] == ("station", "varchar")
    tables = engine.query(
        "SELECT table_schema, table_name FROM hive.information_schema.tables ORDER BY 1, 2"
    ).rows
    assert tables == [("acme_co", "readings"), ("raw", "orders"), ("raw", "readings")]
    columns = engine.query(
        "SELECT column_name, data_type FROM hive.information_schema.columns "
        "WHERE table_schema = 'raw' AND table_name = 'orders' ORDER BY ordinal_position"
    ).rows
    assert columns == [("id", "BIGINT"), ("amount", "DOUBLE"), ("name", "VARCHAR")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tables: [{schema: raw, name: t, bucket: bk1, prefix: p, format: json}]", "format"),
        ("tables: [{schema: Raw, name: t, bucket: bk1, prefix: p, format: csv}]", "lower-case"),
        ("tables: [{schema: raw, name: t, prefix: p, format: csv}]", "tables.0.bucket"),
        (
            "tables: [{schema: r, name: t, bucket: bk1, prefix: p, format: csv, colour: 1}]",
            "colour",
        ),
        (
            "tables: [{schema: r, name: t, bucket: bk1, prefix: p, format: parquet, "
            "columns: {a: int128}}]",
            "type 'int128' is not supported",
        ),
        (
            "tables: [{schema: r, name: t, bucket: bk1, prefix: p, format: csv, "
            "columns: {a: bigint}}]",
            "CSV columns are varchar",
        ),
        (
            "tables: [{schema: r, name: t, bucket: bk1, prefix: p, format: csv, header: false}]",
            "needs its columns declared",
        ),
        (
            "tables: [{schema: r, name: t, bucket: bk1, prefix: p, format: csv}, "
            "{schema: r, name: t, bucket: bk2, prefix: q, format: csv}]",
            "declared twice",
        ),
        ("tables: [", "not YAML"),
    ],
)
def test_bad_declarations_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(HiveError, match=re.escape(message)) as err:
        parse_declarations(text, "hive_tables.yaml")
    assert str(err.value).startswith("hive_tables.yaml: ")


def test_a_bad_file_fails_hive_queries_only(tmp_path: Path) -> None:
    settings = hive_settings(tmp_path)
    store = open_object_store(settings)
    fill(store)
    (tmp_path / "hive_tables.yaml").write_text(
        "tables: [{schema: raw, name: t, bucket: exports, prefix: none, format: parquet},\n"
        "         {schema: raw, name: orders, bucket: exports, prefix: orders, format: parquet}]"
    )
    eng = SqlEngine(settings, store)
    try:
        with pytest.raises(HiveError, match=r"no files under s3://exports/none .*declare them"):
            eng.query("SELECT * FROM hive.raw.t")
        listed = eng.query("SELECT table_name FROM hive.information_schema.tables").rows
        assert listed == [("orders",)]  # the listing leaves the broken table out
        assert eng.query("SELECT count(*) FROM HIVE.RAW.ORDERS").rows == [(5,)]
        assert eng.query("SHOW SCHEMAS FROM delta").rows == [("information_schema",)]
    finally:
        eng.close()
    (tmp_path / "hive_tables.yaml").write_text("tables: [{schema: raw}]")
    eng = SqlEngine(settings, store)
    try:
        with pytest.raises(HiveError, match=re.escape(f"{tmp_path / 'hive_tables.yaml'}: ")):
            eng.query("SHOW TABLES FROM hive.raw")
        assert eng.query("SELECT 1").rows == [(1,)]
    finally:
        eng.close()


def test_hive_tables_on_the_s3_backend(tmp_path: Path, seaweed_s3: SeaweedFS) -> None:
    """A real S3 server in its own process (moto's runs in this one, and DuckDB holds the GIL
    while pyarrow's S3 client waits on it)."""
    settings = hive_settings(
        tmp_path,
        storage_backend="s3",
        s3_endpoint=seaweed_s3.endpoint,
        s3_access_key=SecretStr(seaweed_s3.access_key),
        s3_secret_key=SecretStr(seaweed_s3.secret_key),
    )
    store = open_object_store(settings)
    fill(store)
    eng = SqlEngine(settings, store)
    try:
        assert eng.query(ORDERS).rows == [(5, sum(i * 1.5 for i in range(5)), "n0")]
        assert eng.query(ORDERS).rows == [(5, sum(i * 1.5 for i in range(5)), "n0")]
        store.put("exports", "orders/part-2.parquet", parquet(range(5, 7)))
        assert eng.query("SELECT count(*) FROM hive.raw.readings").rows == [(2,)]
        assert eng.query("SELECT count(*) FROM hive.raw.orders").rows == [(7,)]
    finally:
        eng.close()


# -- Trino ----------------------------------------------------------------------------------------
# trino.io/docs/current/connector/hive.html, "Table properties": external_location, format
# ('PARQUET', 'CSV'), csv_separator, skip_header_line_count; CSV columns must be varchar.
CREATE_RE = re.compile(
    r"^CREATE TABLE hive\.(\w+)\.(\w+) \((.*)\) WITH \("
    r"external_location = 's3://([^']+)', format = '(PARQUET|CSV)'"
    r"(?:, csv_separator = '(.)')?(?:, (skip_header_line_count = 1))?\)$"
)
COLUMN_RE = re.compile(
    r'^"(\w+)" (boolean|tinyint|smallint|integer|bigint|real|double|varchar'
    r"|date|timestamp|varbinary|decimal\(\d+,\d+\))$"
)


def _columns(sql: str) -> list[tuple[str, str]]:
    m = CREATE_RE.match(sql)
    assert m, sql
    out = []
    for part in m.group(3).split(", "):
        c = COLUMN_RE.match(part)
        assert c, part
        out.append((c.group(1), c.group(2)))
    return out


def test_trino_statements_match_the_engines_columns(engine: SqlEngine) -> None:
    catalog = HiveCatalog(engine.settings, engine.store)
    orders = catalog.tables[("raw", "orders")]
    sql = create_table_sql(orders, catalog.schema(orders))
    assert sql == (
        'CREATE TABLE hive.raw.orders ("id" bigint, "amount" double, "name" varchar) '
        "WITH (external_location = 's3://exports/orders', format = 'PARQUET')"
    )
    readings = catalog.tables[("raw", "readings")]
    sql = create_table_sql(readings, catalog.schema(readings))
    m = CREATE_RE.match(sql)
    assert m and m.groups()[3:] == ("co2-data/readings", "CSV", ";", "skip_header_line_count = 1")
    for table in catalog.tables.values():
        described = engine.query(f"DESCRIBE {table.qualified}").rows
        statement = create_table_sql(table, catalog.schema(table))
        assert _columns(statement) == [(r[0], r[1]) for r in described], statement


def test_trino_init_creates_the_declared_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lakewire import platform_init
    from tests.test_trino_registration import FakeTrino

    settings = hive_settings(tmp_path)
    fill(open_object_store(settings))
    trino = FakeTrino()
    monkeypatch.setenv("LAKEWIRE_TRINO_URL", "http://trino:8080")
    monkeypatch.setenv("LAKEWIRE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LAKEWIRE_HIVE_TABLES_FILE", str(settings.hive_tables_file))
    monkeypatch.setattr("lakehouse.trino.connect_trino", trino.cursor)
    assert platform_init.main(["trino"]) == 0
    hive = [s for s in trino.statements if "hive." in s]
    assert hive[:2] == [
        "CREATE SCHEMA IF NOT EXISTS hive.acme_co",
        "CREATE SCHEMA IF NOT EXISTS hive.raw",
    ]
    created = [s for s in hive if s.startswith("CREATE TABLE")]
    assert len(created) == 3 and all(CREATE_RE.match(s) for s in created)

    # On the platform trino-init has no S3 login: undeclared columns are an error, at once.
    monkeypatch.setenv("LAKEWIRE_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("LAKEWIRE_S3_ENDPOINT", "http://127.0.0.1:9")
    before = len(trino.statements)
    assert platform_init.main(["trino"]) == 1
    err = capsys.readouterr().err
    assert "declare the columns of hive.raw.orders, hive.raw.readings" in err
    assert not [s for s in trino.statements[before:] if "hive." in s]

    (tmp_path / "hive_tables.yaml").write_text("tables: [{schema: raw}]")
    before = len(trino.statements)
    assert platform_init.main(["trino"]) == 1  # at once, not after the retries
    assert "tables.0.name" in capsys.readouterr().err
    assert not [s for s in trino.statements[before:] if "hive." in s]


class HiveTrino:
    """Trino's hive catalog as trino-init sees it: tables and their ``SHOW CREATE TABLE``."""

    def __init__(self) -> None:
        self.schemas: set[str] = set()
        self.tables: dict[str, str] = {}
        self.statements: list[str] = []
        self._rows: list[Any] = []

    def execute(self, operation: str, params: Any = None) -> None:
        self.statements.append(operation)
        self._rows = []
        if m := re.match(r"^CREATE SCHEMA IF NOT EXISTS hive\.(\w+)$", operation):
            self.schemas.add(m.group(1))
        elif operation.startswith("SELECT count(*) FROM hive.information_schema.tables"):
            schema, table = re.findall(r"= '(\w+)'", operation)
            self._rows = [(int(f"hive.{schema}.{table}" in self.tables),)]
        elif m := re.match(r"^SHOW CREATE TABLE (\S+)$", operation):
            self._rows = [(self.tables[m.group(1)],)]
        elif m := re.match(r"^DROP TABLE (\S+)$", operation):
            del self.tables[m.group(1)]
        elif m := CREATE_RE.match(operation):
            name = f"hive.{m.group(1)}.{m.group(2)}"
            assert m.group(1) in self.schemas and name not in self.tables, operation
            self.tables[name] = operation
        else:
            raise AssertionError(f"not a statement trino-init makes: {operation}")

    def fetchall(self) -> list[Any]:
        return self._rows


def test_trino_tables_are_replaced_but_a_managed_table_is_never_dropped(
    engine: SqlEngine,
) -> None:
    from lakehouse.hive import create_statements, ensure_trino_tables

    catalog = HiveCatalog(engine.settings, engine.store)
    creates = create_statements(catalog)
    trino = HiveTrino()
    assert ensure_trino_tables(trino, catalog, creates) == list(creates)
    assert not [s for s in trino.statements if s.startswith("DROP")]
    assert ensure_trino_tables(trino, catalog, creates) == list(creates)  # again: replaced
    assert sorted(s for s in trino.statements if s.startswith("DROP")) == [
        "DROP TABLE hive.acme_co.readings",
        "DROP TABLE hive.raw.orders",
        "DROP TABLE hive.raw.readings",
    ]
    assert set(trino.tables.values()) == set(creates.values())

    trino.tables["hive.raw.orders"] = (
        "CREATE TABLE hive.raw.orders (id bigint) WITH (format = 'ORC')"
    )
    with pytest.raises(HiveError, match="managed table"):
        ensure_trino_tables(trino, catalog, creates)
    assert "ORC" in trino.tables["hive.raw.orders"]  # left as it was


def test_hive_catalog_file_is_the_hive_connector_on_the_file_metastore() -> None:
    path = Path(__file__).resolve().parents[1] / "deploy/trino/catalog/hive.properties"
    props = dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert props["connector.name"] == "hive"
    assert props["hive.metastore"] == "file"
    assert props["fs.native-s3.enabled"] == "true"


# -- the HTTP API and tenants ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ("SELECT * FROM hive.acme_co.readings", True),
        ("SHOW TABLES FROM hive.acme_co", True),
        ("DESCRIBE hive.acme_co.readings", True),
        ("SELECT * FROM hive.raw.orders", False),
        ("SHOW TABLES FROM hive.raw", False),
    ],
)
def test_tenant_hive_statements(statement: str, allowed: bool) -> None:
    if allowed:
        scope_statement(statement, "acme_co")
    else:
        with pytest.raises(SqlRefused):
            scope_statement(statement, "acme_co")


def test_hive_through_the_api_for_admin_and_tenant(tmp_path: Path, nats: NatsServer) -> None:
    path = tmp_path / "hive_tables.yaml"
    path.write_text(DECLARATIONS)
    settings = local_settings(tmp_path, nats, hive_tables_file=path)
    fill(open_object_store(settings))
    with Service(settings) as svc:
        c = svc.client
        r = c.post("/api/sql", json={"statement": ORDERS})
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == [[5, sum(i * 1.5 for i in range(5)), "n0"]]
        r = c.post("/api/sql", json={"statement": "SELECT * FROM hive.raw.nope"})
        assert r.status_code == 404
        tree = c.get("/api/sql/catalog").json()
        hive = next(n for n in tree["catalogs"] if n["name"] == "hive")
        raw = next(s for s in hive["schemas"] if s["name"] == "raw")
        orders = next(t for t in raw["tables"] if t["name"] == "orders")
        assert [col["name"] for col in orders["columns"]] == ["id", "amount", "name"]

        key = c.post("/api/tenants", json={"id": "acme-co"}).json()["key"]
        h = {"Authorization": f"Bearer {key}"}
        r = c.post(
            "/api/sql",
            json={"statement": "SELECT station FROM hive.acme_co.readings ORDER BY 1"},
            headers=h,
        )
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == [["barrow"], ["mauna"]]
        r = c.post("/api/sql", json={"statement": ORDERS}, headers=h)
        assert r.status_code == 403 and "outside your schema" in r.json()["detail"]
        r = c.post(
            "/api/sql",
            json={"statement": "SELECT table_schema FROM hive.information_schema.tables"},
            headers=h,
        )
        assert r.status_code == 200 and r.json()["rows"] == [["acme_co"]]
        tree = c.get("/api/sql/catalog", headers=h).json()
        hive = next(n for n in tree["catalogs"] if n["name"] == "hive")
        assert [s["name"] for s in hive["schemas"]] == ["acme_co"]

        path.write_text("tables: [{schema: raw}]")  # a bad file: the tree says so, still answers
        tree = c.get("/api/sql/catalog").json()
        hive = next(n for n in tree["catalogs"] if n["name"] == "hive")
        assert hive["schemas"] == [] and "hive_tables.yaml" in hive["error"]


def test_the_projects_file_declares_valid_tables(tmp_path: Path) -> None:
    """The file the image carries (Dockerfile) is what an unset LAKEWIRE_HIVE_TABLES_FILE reads."""
    from lakehouse.hive import DEFAULT_FILE, load_declarations

    assert DEFAULT_FILE.name == "hive_tables.yaml" and DEFAULT_FILE.is_file()
    dockerfile = (DEFAULT_FILE.parent / "Dockerfile").read_text()
    assert re.search(r"^COPY .*\bhive_tables\.yaml\b", dockerfile, re.M)
    assert load_declarations(Settings(data_dir=tmp_path)) == parse_declarations(
        DEFAULT_FILE.read_text(), str(DEFAULT_FILE)
    )


def test_parquet_types_read_from_the_files_become_trinos(engine: SqlEngine) -> None:
    import datetime as dt
    from decimal import Decimal

    from lakehouse.hive import HiveTable

    when = dt.datetime(2024, 1, 31, 12, 0, tzinfo=dt.UTC)
    buf = io.BytesIO()
    pq.write_table(
        pa.table(
            {
                "i": pa.array([1], pa.int32()),
                "ok": [True],
                "day": pa.array([dt.date(2024, 1, 31)], pa.date32()),
                "price": pa.array([Decimal("9.99")], pa.decimal128(10, 2)),
                "at": pa.array([when], pa.timestamp("us", tz="UTC")),
                "big": pa.array(["x"], pa.large_string()),
            }
        ),
        buf,
    )
    engine.store.put("exports", "typed/a.parquet", buf.getvalue())
    catalog = HiveCatalog(engine.settings, engine.store)
    typed = HiveTable("raw", "typed", "exports", "typed", "parquet", True, ",", None)
    assert create_table_sql(typed, catalog.schema(typed)) == (
        'CREATE TABLE hive.raw.typed ("i" integer, "ok" boolean, "day" date, '
        '"price" decimal(10,2), "at" timestamp, "big" varchar) '
        "WITH (external_location = 's3://exports/typed', format = 'PARQUET')"
    )
    [row] = catalog.dataset(typed, catalog.files(typed)).to_table().to_pylist()
    assert row == {
        "i": 1,
        "ok": True,
        "day": dt.date(2024, 1, 31),
        "price": Decimal("9.99"),
        "at": when.replace(tzinfo=None),  # Trino's Hive timestamp has no zone: UTC wall time
        "big": "x",
    }
