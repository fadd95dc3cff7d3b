"""The embedded SQL engine: DuckDB over the same tables, with Trino's ``catalog.schema.table``.

A query names tables as Trino does (``delta.default.orders``, ``iceberg.sales.orders``); each
referenced table is attached as a view over an Arrow dataset (Delta) or a pyiceberg scan, so
DuckDB reads the table's current snapshot with no extension to download.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from lakehouse.delta import open_table
from lakehouse.objectstore import ObjectStore
from lakehouse.settings import Settings
from lakehouse.tables import TableRef, delta_table_uri, table_format

TABLE_NAME_RE = re.compile(
    r'\b(delta|iceberg)\s*\.\s*"?([A-Za-z_][\w]*)"?\s*\.\s*"?([A-Za-z_][\w]*)"?', re.IGNORECASE
)


class TableNotFound(LookupError):
    pass


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def to_arrow(self) -> pa.Table:
        return pa.Table.from_pylist([dict(zip(self.columns, r, strict=True)) for r in self.rows])


class SqlEngine:
    def __init__(self, settings: Settings, store: ObjectStore) -> None:
        self.settings = settings
        self.store = store
        self.con = duckdb.connect()
        self._attached: set[str] = set()
        self._registered: set[TableRef] = set()

    def _attach(self, catalog: str, schema: str) -> None:
        if catalog not in self._attached:
            self.con.execute(f"ATTACH ':memory:' AS {catalog}")
            self._attached.add(catalog)
        self.con.execute(f'CREATE SCHEMA IF NOT EXISTS {catalog}."{schema}"')

    def register(self, ref: TableRef) -> None:
        if ref in self._registered:
            return
        if ref.format == "delta":
            uri = delta_table_uri(self.settings, self.store, ref)
            dt = open_table(uri, self.store.storage_options())
            if dt is None:
                raise TableNotFound(f"table {ref.qualified} does not exist")
            source: Any = dt.to_pyarrow_dataset()
        else:
            from lakehouse.iceberg import load_table

            table = load_table(self.settings, self.store, ref)
            if table is None:
                raise TableNotFound(f"table {ref.qualified} does not exist")
            source = table.scan().to_arrow_batch_reader()
        view = f"__{ref.format}__{ref.schema}__{ref.name}"
        self.con.register(view, source)
        self._attach(ref.format, ref.schema)
        target = f'{ref.format}."{ref.schema}"."{ref.name}"'
        self.con.execute(f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM {view}")
        self._registered.add(ref)

    def query(self, sql: str) -> QueryResult:
        for fmt, schema, name in TABLE_NAME_RE.findall(sql):
            self.register(TableRef(table_format(fmt.lower()), schema, name))
        cur = self.con.execute(sql)
        columns = [d[0] for d in cur.description or []]
        return QueryResult(columns, cur.fetchall())

    def close(self) -> None:
        self.con.close()
