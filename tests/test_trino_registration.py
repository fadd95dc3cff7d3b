"""Trino registration statements for a real Delta table written by the project (issue 10).

Trino cannot run here (it needs Java 25 and its container), so the statements are checked
against the documented forms of the Delta Lake connector:

    CREATE SCHEMA IF NOT EXISTS catalog.schema WITH (location = '...')
    CALL catalog.system.register_table(schema_name => '...', table_name => '...',
                                       table_location => '...')
    CALL catalog.system.flush_metadata_cache(schema_name => '...', table_name => '...')

and the table location is checked to be where the table's ``_delta_log`` really is. The
idempotency and retry logic runs against a recording cursor that behaves like Trino (register
of a known table fails with "already exists").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from lakehouse.objectstore import open_object_store
from lakehouse.routes import parse_routes
from lakehouse.settings import Settings
from lakehouse.trino import (
    TrinoError,
    create_schema_sql,
    ensure_registered,
    ensure_schemas,
    flush_cache_sql,
    register_delta_table,
    register_table_sql,
)
from pipelines.ingestion import ingest_batch
from tests.helpers import csv_bytes, land

# The documented signatures (trino.io/docs/current/connector/delta-lake.html, "Register table"
# and "Flush metadata cache"): named arguments, string literals.
DOCUMENTED = {
    "register_table": ("schema_name", "table_name", "table_location"),
    "flush_metadata_cache": ("schema_name", "table_name"),
}
CALL_RE = re.compile(r"^CALL (\w+)\.system\.(\w+)\((.*)\)$")
ARG_RE = re.compile(r"(\w+) => '((?:[^']|'')*)'")
SCHEMA_RE = re.compile(r"^CREATE SCHEMA IF NOT EXISTS (\w+)\.(\w+) WITH \(location = '([^']*)'\)$")


def _call(sql: str) -> tuple[str, str, dict[str, str]]:
    m = CALL_RE.match(sql)
    assert m, sql
    catalog, procedure, args = m.groups()
    pairs = ARG_RE.findall(args)
    assert ", ".join(f"{k} => '{v}'" for k, v in pairs) == args, f"unparsed arguments in {sql}"
    names = tuple(k for k, _ in pairs)
    assert names == DOCUMENTED[procedure], f"{procedure}{names} is not the documented signature"
    return catalog, procedure, dict(pairs)


@pytest.fixture
def orders_table(tmp_path: Path) -> tuple[Settings, Any]:
    settings = Settings(data_dir=tmp_path / "data")
    store = open_object_store(settings)
    for bucket in ("landing", settings.lake_bucket):
        store.create_bucket(bucket)
    route = parse_routes(
        "routes:\n  - {name: r, glob: 'orders/*', format: delta, table: sales.orders}\n"
    )[0]
    ref = route.table_for("orders/a.csv")
    src = land(store, "landing", "orders/a.csv", csv_bytes(10))
    assert ingest_batch(settings, store, ref, [src], "run-1", route=route).rows == 10
    return settings, ref


def test_statements_for_a_real_delta_table_match_trinos_documented_forms(
    orders_table: tuple[Settings, Any],
) -> None:
    settings, ref = orders_table
    assert ref.format == "delta" and (ref.schema, ref.name) == ("sales", "orders")

    m = SCHEMA_RE.match(create_schema_sql(settings, ref.schema))
    assert m and m.groups() == ("delta", "sales", "s3://lake/sales")

    catalog, procedure, args = _call(register_table_sql(settings, ref))
    assert (catalog, procedure) == ("delta", "register_table")
    assert args == {
        "schema_name": "sales",
        "table_name": "orders",
        "table_location": "s3://lake/sales/orders",
    }
    # The location is where the project wrote the table: s3://<lake>/<schema>/<table> on the
    # platform is <storage_root>/<lake>/<schema>/<table> on the local backend.
    local = settings.storage_root / args["table_location"].removeprefix("s3://")
    commits = sorted((local / "_delta_log").glob("*.json"))
    assert commits and commits[0].name == "00000000000000000000.json"

    assert _call(flush_cache_sql(ref))[2] == {"schema_name": "sales", "table_name": "orders"}

    # The FACTS example, verbatim.
    default = type(ref)("delta", "default", "orders")
    assert create_schema_sql(settings, "default") == (
        "CREATE SCHEMA IF NOT EXISTS delta.default WITH (location = 's3://lake/default')"
    )
    assert register_table_sql(settings, default) == (
        "CALL delta.system.register_table(schema_name => 'default', table_name => 'orders', "
        "table_location => 's3://lake/default/orders')"
    )


def test_names_trino_would_need_quoted_are_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(TrinoError):
        create_schema_sql(settings, "Sales Data")
    with pytest.raises(TrinoError):
        create_schema_sql(settings, "x'; DROP SCHEMA y; --")


class FakeTrino:
    """Schemas and registered tables, as Trino's file metastore keeps them."""

    def __init__(self, fail_times: int = 0) -> None:
        self.schemas: set[str] = set()
        self.tables: set[tuple[str, str]] = set()
        self.statements: list[str] = []
        self.fail_times = fail_times
        self._result: list[Any] = []

    def cursor(self, _config: Settings) -> FakeTrino:
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionError("trino is starting")
        return self

    def execute(self, operation: str, params: Any = None) -> None:
        self.statements.append(operation)
        self._result = []
        if m := SCHEMA_RE.match(operation):
            self.schemas.add(m.group(2))
        elif operation.startswith("SELECT count(*)"):
            schema, table = re.findall(r"= '(\w+)'", operation)
            self._result = [(int((schema, table) in self.tables),)]
        elif operation.startswith("CALL"):
            _, procedure, args = _call(operation)
            key = (args["schema_name"], args["table_name"])
            if procedure == "register_table":
                if args["schema_name"] not in self.schemas:
                    raise RuntimeError("Schema not found")
                if key in self.tables:
                    raise RuntimeError(f"Table already exists: {key}")
                self.tables.add(key)

    def fetchall(self) -> list[Any]:
        return self._result


def test_registration_is_idempotent_and_survives_a_concurrent_registration(
    orders_table: tuple[Settings, Any],
) -> None:
    settings, ref = orders_table
    trino = FakeTrino()
    assert ensure_schemas(trino, settings, ["default"]) == ["default"]
    assert ensure_registered(trino, settings, ref) is True
    assert ensure_registered(trino, settings, ref) is False  # already known: no CALL
    assert sum(s.startswith("CALL delta.system.register_table") for s in trino.statements) == 1
    assert trino.tables == {("sales", "orders")} and trino.schemas == {"default", "sales"}

    # A schema change flushes Trino's cached metadata of the table.
    ensure_registered(trino, settings, ref, flush=True)
    assert trino.statements[-1].startswith("CALL delta.system.flush_metadata_cache(")

    # Another run registered it between our check and our CALL: not an error.
    racing = FakeTrino()
    racing.schemas.add("sales")
    original = racing.execute

    def execute(operation: str, params: Any = None) -> None:
        if operation.startswith("SELECT count(*)"):
            original(operation)
            racing.tables.add(("sales", "orders"))
            racing._result = [(0,)]
            return
        original(operation)

    racing.execute = execute  # type: ignore[method-assign]
    assert ensure_registered(racing, settings, ref) is False


def test_register_delta_table_retries_then_reports(orders_table: tuple[Settings, Any]) -> None:
    settings, ref = orders_table
    config = settings.model_copy(
        update={"trino_url": "http://trino:8080", "trino_register_attempts": 4}
    )
    sleeps: list[float] = []

    flaky = FakeTrino(fail_times=2)
    assert register_delta_table(config, ref, connect=flaky.cursor, sleep=sleeps.append)
    assert ("sales", "orders") in flaky.tables and sleeps == [0.5, 1.0]

    down = FakeTrino(fail_times=99)
    with pytest.raises(TrinoError, match=re.escape("registering delta.sales.orders in Trino")):
        register_delta_table(config, ref, connect=down.cursor, sleep=sleeps.append)

    # No Trino configured (the embedded default), or an Iceberg table: nothing to do.
    assert register_delta_table(settings, ref) is None
    iceberg = type(ref)("iceberg", "sales", "orders")
    assert register_delta_table(config, iceberg, connect=down.cursor) is None


def test_trino_init_step_creates_the_configured_schemas(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from lakewire import platform_init

    trino = FakeTrino()
    monkeypatch.setenv("LAKEWIRE_TRINO_URL", "http://trino:8080")
    monkeypatch.setenv("LAKEWIRE_TRINO_SCHEMAS", '["default", "sales"]')
    monkeypatch.setenv("LAKEWIRE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("lakehouse.trino.connect_trino", trino.cursor)
    assert platform_init.main(["trino"]) == 0
    assert trino.schemas == {"default", "sales"}
