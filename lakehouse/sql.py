"""The embedded SQL engine: DuckDB over the same tables, with Trino's ``catalog.schema.table``.

A query names tables as Trino does (``delta.default.orders``, ``iceberg.sales.orders``). The
statement is parsed (``lakehouse.sql_guard``, sqlglot's Trino dialect) and each table it names is
attached as a view over a re-scannable Arrow source of the table's snapshot: a pyarrow dataset
for Delta (projections and filters pushed into the Parquet scan), an Arrow table for Iceberg. No
extension is downloaded. Each query re-resolves its tables, so a long-lived engine sees new
commits; a snapshot already attached is reused.

The ``hive`` catalog holds the external tables declared in ``hive_tables.yaml``
(``lakehouse.hive``): each is a view over a pyarrow dataset of the files under its prefix, listed
again by every query. DuckDB never opens those files itself (they are outside the lake, and
``allowed_directories`` stays the lake): pyarrow reads them, as it reads Delta on S3.

Also understood, as on Trino:

- ``FOR VERSION AS OF n`` (Delta version, Iceberg snapshot id) and ``FOR TIMESTAMP AS OF t``;
- ``"<table>$history"``: one row per commit (version, time, operation, rows added, run);
- ``SHOW CATALOGS``, ``SHOW SCHEMAS FROM c``, ``SHOW TABLES FROM c.s``,
  ``SHOW COLUMNS FROM`` / ``DESCRIBE c.s.t`` and ``c.information_schema.tables/columns``.

The connection is locked down before any caller's SQL runs (DECISIONS "SQL authorisation"):
``enable_external_access=false`` and ``lock_configuration=true``, so ``read_text``, ``COPY``,
``ATTACH``, ``INSTALL``/``LOAD`` and ``SET`` are refused by DuckDB even if the classifier let
one through; statements other than queries and inspection are refused before that.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from lakehouse.delta import open_table
from lakehouse.hive import CATALOG as HIVE
from lakehouse.hive import HiveCatalog, HiveError
from lakehouse.objectstore import LocalObjectStore, ObjectStore
from lakehouse.settings import Settings
from lakehouse.sql_guard import SqlError, SqlRefused, Statement, classify
from lakehouse.tables import (
    RUN_ID_PROPERTY,
    TABLE_FORMATS,
    TableRef,
    delta_table_uri,
    table_format,
)

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to Command" for SHOW

CATALOGS: tuple[str, ...] = (*TABLE_FORMATS, HIVE)
HISTORY_SUFFIX = "$history"
_LINE_RE = re.compile(r"LINE (\d+): ")

__all__ = ["QueryResult", "SqlEngine", "SqlError", "SqlRefused", "TableNotFound"]


class TableNotFound(SqlError, LookupError):
    pass


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def to_arrow(self) -> pa.Table:
        return pa.Table.from_pylist([dict(zip(self.columns, r, strict=True)) for r in self.rows])


@dataclass(frozen=True)
class Snapshot:
    """One table at one point: ``at`` is None for the current snapshot."""

    ref: TableRef
    kind: str = "current"  # current | version | timestamp | history
    at: str = ""

    @property
    def view(self) -> str:
        if self.kind == "history":
            return self.ref.name + HISTORY_SUFFIX
        suffix = "" if self.kind == "current" else f"${self.kind}${self.at}"
        return self.ref.name + suffix


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _version_of(version: exp.Expression) -> tuple[str, str]:
    kind = str(version.this).lower()
    value = version.expression
    while isinstance(value, exp.Cast):
        value = value.this
    if not isinstance(value, exp.Literal):
        raise SqlError(f"FOR {kind.upper()} AS OF needs a literal, not {value.sql('trino')}")
    if kind == "version":
        if value.is_string or not value.name.lstrip("-").isdigit():
            raise SqlError("FOR VERSION AS OF needs an integer version (Iceberg: snapshot id)")
        return "version", value.name
    if kind == "timestamp":
        return "timestamp", value.name
    raise SqlError(f"FOR {kind.upper()} AS OF is not supported (VERSION or TIMESTAMP)")


def _parse_time(text: str) -> datetime:
    raw = text.strip().replace(" UTC", "+00:00").replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise SqlError(f"'{text}' is not a timestamp (use '2024-01-31 12:00:00 UTC')") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _error(exc: duckdb.Error) -> SqlError:
    """DuckDB's message, with the line and column its caret points at."""
    msg = str(exc)
    lines = msg.splitlines()
    line = column = None
    for i, text in enumerate(lines):
        m = _LINE_RE.match(text)
        if m and i + 1 < len(lines) and "^" in lines[i + 1]:
            line = int(m.group(1))
            column = lines[i + 1].index("^") - m.end() + 1
            break
    head = msg.split("\n\nLINE ")[0].strip()
    if isinstance(exc, duckdb.PermissionException):
        return SqlRefused(head, line, column)
    if isinstance(exc, duckdb.CatalogException) and "does not exist" in head:
        return TableNotFound(head, line, column)
    return SqlError(head, line, column)


class SqlEngine:
    """DuckDB over the lake's tables; one per thread of queries (``interrupt`` from any)."""

    def __init__(self, settings: Settings, store: ObjectStore) -> None:
        self.settings = settings
        self.store = store
        self.con = duckdb.connect()
        for catalog in CATALOGS:
            self.con.execute(f"ATTACH ':memory:' AS {catalog}")
        # On the local backend DuckDB scans a Delta snapshot's Parquet files itself (parallel,
        # as fast as raw DuckDB): only the lake's folder is allowed, and only table functions
        # that read no file pass the statement check (``_check_table_functions``).
        self._lake_dir: str | None = None
        if isinstance(store, LocalObjectStore):
            lake = store.bucket_path(settings.lake_bucket).resolve()
            self._lake_dir = str(lake)
            self.con.execute(f"SET allowed_directories = [{_literal(str(lake) + '/')}]")
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET autoinstall_known_extensions = false")
        self.con.execute("SET autoload_known_extensions = false")
        self.con.execute("SET lock_configuration = true")
        self._schemas: set[tuple[str, str]] = set()
        self._views: dict[Snapshot, str] = {}  # snapshot -> identity of what the view reads
        self._sources: dict[str, Any] = {}  # keeps registered Arrow objects alive
        self.hive = HiveCatalog(settings, store)
        self._hive_views: dict[tuple[str, str], tuple[Any, ...]] = {}  # -> the files it reads
        self._lock = threading.Lock()

    # -- the lake's tables ----------------------------------------------------------------------
    def list_schemas(self, catalog: str) -> list[str]:
        if catalog == HIVE:
            return self.hive.schemas()
        fmt = table_format(catalog)
        if fmt == "delta":
            bucket = self.settings.lake_bucket
            if not self.store.bucket_exists(bucket):
                return []
            folders = self.store.list_page(bucket, "", "/", limit=10_000).folders
            names = [f.rstrip("/") for f in folders]
            return sorted(n for n in names if n != "iceberg" and self.list_tables(catalog, n))
        from lakehouse.iceberg import catalog as iceberg_catalog

        return sorted(
            ".".join(ns) for ns in iceberg_catalog(self.settings, self.store).list_namespaces()
        )

    def list_tables(self, catalog: str, schema: str) -> list[str]:
        if catalog == HIVE:
            return self.hive.table_names(schema)
        fmt = table_format(catalog)
        if fmt == "delta":
            bucket = self.settings.lake_bucket
            if not self.store.bucket_exists(bucket):
                return []
            folders = self.store.list_page(bucket, f"{schema}/", "/", limit=10_000).folders
            out = []
            for folder in folders:
                log = self.store.list_page(
                    bucket, f"{folder.rstrip('/')}/_delta_log/", "/", limit=1
                )
                if log.objects or log.folders:
                    out.append(folder.rstrip("/").rsplit("/", 1)[-1])
            return sorted(out)
        from pyiceberg.exceptions import NoSuchNamespaceError

        from lakehouse.iceberg import catalog as iceberg_catalog

        try:
            idents = iceberg_catalog(self.settings, self.store).list_tables(schema)
        except NoSuchNamespaceError:
            return []
        return sorted(ident[-1] for ident in idents)

    def _source(self, snap: Snapshot) -> tuple[str, Any]:
        """(identity of the snapshot, a re-scannable Arrow source of its rows)."""
        ref = snap.ref
        if ref.format == "delta":
            dt = open_table(
                delta_table_uri(self.settings, self.store, ref), self.store.storage_options()
            )
            if dt is None:
                raise TableNotFound(f"table {ref.qualified} does not exist")
            if snap.kind == "history":
                return f"history@{dt.version()}", _delta_history(dt)
            try:
                if snap.kind == "version":
                    dt.load_as_version(int(snap.at))
                elif snap.kind == "timestamp":
                    dt.load_as_version(_parse_time(snap.at))
            except Exception as exc:
                raise SqlError(f"{ref.qualified} has no {snap.kind} {snap.at}: {exc}") from None
            files = self._parquet_files(dt)
            if files is not None:
                names = list(dt.schema().to_arrow().names)
                return f"v{dt.version()}", _ParquetFiles(files, names, dt.to_pyarrow_dataset)
            return f"v{dt.version()}", dt.to_pyarrow_dataset()
        from lakehouse.iceberg import load_table

        table = load_table(self.settings, self.store, ref)
        if table is None:
            raise TableNotFound(f"table {ref.qualified} does not exist")
        if snap.kind == "history":
            current = table.current_snapshot()
            return f"history@{current.snapshot_id if current else 0}", _iceberg_history(table)
        snapshot = table.current_snapshot()
        if snap.kind == "version":
            snapshot = table.snapshot_by_id(int(snap.at))
            if snapshot is None:
                raise SqlError(f"{ref.qualified} has no snapshot {snap.at}")
        elif snap.kind == "timestamp":
            ms = int(_parse_time(snap.at).timestamp() * 1000)
            snapshot = table.snapshot_as_of_timestamp(ms)
            if snapshot is None:
                raise SqlError(f"{ref.qualified} has no snapshot at or before {snap.at}")
        snapshot_id = snapshot.snapshot_id if snapshot is not None else None
        # An Arrow table, not a one-shot batch reader: a view over a reader is empty the second
        # time it is scanned (the bug this replaced). The scan is re-done only on a new snapshot.
        key = f"s{snapshot_id}"
        if self._views.get(snap) == key:
            return key, None
        scan = table.scan(snapshot_id=snapshot_id)
        files = self._iceberg_files(table, scan)
        if files is not None:
            columns = [f.name for f in table.schema().fields]
            return key, _ParquetFiles(files, columns, scan.to_arrow)
        return key, scan.to_arrow()

    def attach(self, snap: Snapshot) -> None:
        key, source = self._source(snap)
        if self._views.get(snap) == key:
            return
        ref = snap.ref
        if (ref.format, ref.schema) not in self._schemas:
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {ref.format}.{_ident(ref.schema)}")
            self._schemas.add((ref.format, ref.schema))
        target = f"{ref.format}.{_ident(ref.schema)}.{_ident(snap.view)}"
        if isinstance(source, _ParquetFiles):
            try:
                self.con.execute(f"CREATE OR REPLACE VIEW {target} AS {source.select()}")
                self.con.execute(f"DESCRIBE {target}")  # reads the footers: fails now, not later
                self._views[snap] = key
                return
            except duckdb.Error:
                source = source.fallback()
        internal = f"__{ref.format}__{ref.schema}__{snap.view}".replace('"', "")
        self.con.register(internal, source)
        self._sources[internal] = source
        self.con.execute(f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM {_ident(internal)}")
        self._views[snap] = key

    def _iceberg_files(self, table: Any, scan: Any) -> list[str] | None:
        """The snapshot's Parquet files when DuckDB can read them by column name: local, inside
        the lake, one schema ever (no rename to map by field id), no delete files."""
        if self._lake_dir is None or len(table.schemas()) != 1:
            return None
        files = []
        for task in scan.plan_files():
            if task.delete_files or task.file.file_format.name != "PARQUET":
                return None
            path = str(task.file.file_path).removeprefix("file://")
            if not path.startswith(self._lake_dir + "/"):
                return None
            files.append(path)
        return files or None

    def _parquet_files(self, dt: Any) -> list[str] | None:
        """The snapshot's data files when DuckDB can read them as they are: local, inside the
        lake, no partition columns (their values live in the log), no column mapping and no
        deletion vectors. Else None: the table is scanned as an Arrow dataset."""
        if self._lake_dir is None:
            return None
        meta = dt.metadata()
        if meta.partition_columns:
            return None
        config = meta.configuration or {}
        if config.get("delta.columnMapping.mode", "none") != "none":
            return None
        if "deletionVectors" in (dt.protocol().reader_features or []):
            return None
        files = []
        for uri in dt.file_uris():
            path = uri.removeprefix("file://")
            if not path.startswith(self._lake_dir + "/"):
                return None
            files.append(path)
        return files or None

    def _attach_hive(self, schema: str, name: str) -> None:
        """A declared external table as a view over its files as they are now: re-listed by
        every query, re-registered only when the files changed (``lakehouse.hive``)."""
        table = self.hive.table(schema, name)
        if table is None:
            raise TableNotFound(f"table {HIVE}.{schema}.{name} does not exist (not declared)")
        files = self.hive.files(table)
        identity = tuple((o.key, o.etag, o.size) for o in files)
        if self._hive_views.get((schema, name)) == identity:
            return
        source = self.hive.dataset(table, files)
        if (HIVE, schema) not in self._schemas:
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {HIVE}.{_ident(schema)}")
            self._schemas.add((HIVE, schema))
        internal = f"__{HIVE}__{schema}__{name}"
        self.con.register(internal, source)
        self._sources[internal] = source
        target = f"{HIVE}.{_ident(schema)}.{_ident(name)}"
        self.con.execute(f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM {_ident(internal)}")
        self._hive_views[(schema, name)] = identity

    def register(self, ref: TableRef) -> None:
        self.attach(Snapshot(ref))

    def _attach_catalog(self, catalog: str) -> None:
        for schema in self.list_schemas(catalog):
            for name in self.list_tables(catalog, schema):
                if catalog == HIVE:
                    # A listing is not spoilt by one table whose files cannot be read (another
                    # tenant's, maybe): it is left out; querying it says why.
                    with contextlib.suppress(HiveError):
                        self._attach_hive(schema, name)
                else:
                    self.attach(Snapshot(TableRef(table_format(catalog), schema, name)))

    # -- statements -----------------------------------------------------------------------------
    def arrow(self, sql: str, *, limit: int | None = None, admin: bool = False) -> pa.Table:
        """The statement's result as Arrow; ``SqlError`` with the engine's message and position."""
        stmt = classify(sql, admin=admin)
        with self._lock:
            if stmt.kind == "show":
                result = self._show(stmt)
            elif stmt.kind == "describe":
                result = self._describe(stmt)
            elif stmt.kind == "query":
                return self._query(stmt, limit)
            else:
                raise SqlRefused("the embedded engine is read-only: only queries and inspection")
        return result.slice(0, limit) if limit is not None else result

    def _query(self, stmt: Statement, limit: int | None) -> pa.Table:
        _check_table_functions(stmt)
        rewrite = False
        for table in stmt.tables:
            catalog, schema = table.catalog.lower(), table.db
            if catalog not in CATALOGS or not schema:
                continue
            if schema.lower() == "information_schema":
                self._attach_catalog(catalog)
                table.replace(_info_schema(catalog, table))
                rewrite = True
                continue
            if catalog == HIVE:
                if table.args.get("version") is not None or table.name.endswith(HISTORY_SUFFIX):
                    raise SqlError(f"{HIVE} tables are plain files: they have no versions")
                self._attach_hive(schema.lower(), table.name.lower())  # Trino's unquoted names
                continue
            snap = self._snapshot(table)
            self.attach(snap)
            if snap.kind in ("version", "timestamp"):
                table.set("version", None)
                table.set("this", exp.to_identifier(snap.view, quoted=True))
                rewrite = True
        text = stmt.tree.sql(dialect="duckdb") if rewrite else stmt.sql
        try:
            rel = self.con.sql(text)
            if rel is None:
                return pa.table({})
            if limit is not None:
                rel = rel.limit(limit)
            return rel.to_arrow_table()
        except duckdb.Error as exc:
            raise _error(exc) from None

    def _snapshot(self, table: exp.Table) -> Snapshot:
        ref = TableRef(table_format(table.catalog.lower()), table.db, table.name)
        version = table.args.get("version")
        if table.name.endswith(HISTORY_SUFFIX):
            base = TableRef(ref.format, ref.schema, table.name[: -len(HISTORY_SUFFIX)])
            return Snapshot(base, "history", "")
        if isinstance(version, exp.Version):
            kind, at = _version_of(version)
            return Snapshot(ref, kind, at)
        return Snapshot(ref)

    def _show(self, stmt: Statement) -> pa.Table:
        words = stmt.command.replace(";", " ").split()
        what = words[0].upper() if words else ""
        target = words[2] if len(words) >= 3 and words[1].upper() in ("FROM", "IN") else ""
        parts = [p.strip('"') for p in target.split(".")] if target else []
        if what == "CATALOGS":
            return pa.table({"Catalog": list(CATALOGS)})
        if what == "SCHEMAS" and len(parts) == 1 and parts[0] in CATALOGS:
            return pa.table({"Schema": ["information_schema", *self.list_schemas(parts[0])]})
        if what == "TABLES" and len(parts) == 2 and parts[0] in CATALOGS:
            return pa.table({"Table": self.list_tables(parts[0], parts[1])})
        if what == "COLUMNS" and len(parts) == 3 and parts[0] in CATALOGS:
            return self._columns(*parts)
        raise SqlError(
            "SHOW needs CATALOGS, SCHEMAS FROM catalog, TABLES FROM catalog.schema or COLUMNS FROM "
            "catalog.schema.table (catalogs: " + ", ".join(CATALOGS) + ")"
        )

    def _describe(self, stmt: Statement) -> pa.Table:
        tables = [t for t in stmt.tables if t.catalog.lower() in CATALOGS and t.db]
        if len(tables) != 1:
            raise SqlError("DESCRIBE needs one table as catalog.schema.table")
        t = tables[0]
        return self._columns(t.catalog.lower(), t.db, t.name)

    def _columns(self, catalog: str, schema_name: str, table_name: str) -> pa.Table:
        """Trino's ``DESCRIBE`` shape: Column, Type, Extra, Comment; from the table's metadata
        (a hive table's: its declaration or first file), without reading its data."""
        if catalog == HIVE:
            declared = self.hive.table(schema_name.lower(), table_name.lower())
            if declared is None:
                raise TableNotFound(f"table {HIVE}.{schema_name}.{table_name} is not declared")
            schema = self.hive.schema(declared)
        else:
            schema = self._table_schema(TableRef(table_format(catalog), schema_name, table_name))
        name = f"__describe__{catalog}__{schema_name}__{table_name}"
        self.con.register(name, schema.empty_table())
        try:
            rows = self.con.execute(f"DESCRIBE {_ident(name)}").fetchall()
        except duckdb.Error as exc:
            raise _error(exc) from None
        finally:
            self.con.unregister(name)
        comments = [
            (f.metadata or {}).get(b"comment", b"").decode(errors="replace") for f in schema
        ]
        return pa.table(
            {
                "Column": [r[0] for r in rows],
                "Type": [str(r[1]).lower() for r in rows],
                "Extra": ["" for _ in rows],
                "Comment": comments,
            }
        )

    def _table_schema(self, ref: TableRef) -> pa.Schema:
        if ref.format == "delta":
            uri = delta_table_uri(self.settings, self.store, ref)
            dt = open_table(uri, self.store.storage_options())
            if dt is None:
                raise TableNotFound(f"table {ref.qualified} does not exist")
            return pa.schema(dt.schema().to_arrow())
        from lakehouse.iceberg import load_table

        table = load_table(self.settings, self.store, ref)
        if table is None:
            raise TableNotFound(f"table {ref.qualified} does not exist")
        return table.schema().as_arrow()

    def query(self, sql: str) -> QueryResult:
        """Rows as Python tuples (tests and small answers; prefer ``arrow``)."""
        table = self.arrow(sql)
        columns = table.column_names
        return QueryResult(columns, [tuple(r.values()) for r in table.to_pylist()])

    def interrupt(self) -> None:
        """Stop the running query (from another thread); it fails with an interrupt error."""
        self.con.interrupt()

    def close(self) -> None:
        self.con.close()


def _info_schema(catalog: str, table: exp.Table) -> exp.Expr:
    """``<catalog>.information_schema.<x>`` as DuckDB's, limited to that catalog's tables."""
    sub = (
        f"(SELECT * FROM information_schema.{_ident(table.name)} "
        f"WHERE table_catalog = {_literal(catalog)} AND table_name NOT LIKE '%$%')"
    )
    alias = table.alias or table.name
    return exp.Subquery(
        this=_parse_duckdb(sub).this, alias=exp.TableAlias(this=exp.to_identifier(alias))
    )


def _parse_duckdb(sql: str) -> exp.Expr:
    import sqlglot

    return sqlglot.parse_one(sql, read="duckdb")


def _delta_history(dt: Any) -> pa.Table:
    rows = []
    for h in sorted(dt.history(), key=lambda h: int(h.get("version", 0))):
        metrics = h.get("operationMetrics") or {}
        added = metrics.get("num_added_rows", metrics.get("numOutputRows"))
        ts = h.get("timestamp")
        rows.append(
            {
                "version": int(h.get("version", 0)),
                "timestamp": datetime.fromtimestamp(ts / 1000, UTC) if ts else None,
                "operation": str(h.get("operation") or ""),
                "lakewire_operation": str(h.get("lakewire.operation") or ""),
                "rows_added": int(added) if added is not None else None,
                "sources": str(h.get("lakewire.sources") or ""),
                "run_id": str(h.get(RUN_ID_PROPERTY) or ""),
            }
        )
    return pa.Table.from_pylist(rows, schema=_HISTORY_SCHEMA)


def _iceberg_history(table: Any) -> pa.Table:
    rows = []
    for snap in table.snapshots():
        summary = snap.summary
        props = summary.additional_properties if summary else {}
        added = props.get("added-records")
        rows.append(
            {
                "version": int(snap.snapshot_id),
                "timestamp": datetime.fromtimestamp(snap.timestamp_ms / 1000, UTC),
                "operation": str(summary.operation.value) if summary else "",
                "lakewire_operation": str(props.get("lakewire.operation") or ""),
                "rows_added": int(added) if added is not None else None,
                "sources": str(props.get("lakewire.sources") or ""),
                "run_id": str(props.get(RUN_ID_PROPERTY) or ""),
            }
        )
    return pa.Table.from_pylist(rows, schema=_HISTORY_SCHEMA)


_HISTORY_SCHEMA = pa.schema(
    [
        ("version", pa.int64()),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("operation", pa.string()),
        ("lakewire_operation", pa.string()),
        ("rows_added", pa.int64()),
        ("sources", pa.string()),
        ("run_id", pa.string()),
    ]
)


@dataclass(frozen=True)
class _ParquetFiles:
    files: list[str]
    columns: list[str]
    fallback: Callable[[], Any]  # the Arrow source, if DuckDB cannot read the files as they are

    def select(self) -> str:
        names = ", ".join(_ident(c) for c in self.columns)
        files = ", ".join(_literal(f) for f in self.files)
        return f"SELECT {names} FROM read_parquet([{files}], union_by_name = true)"


# Table functions that read no file; any other (read_parquet, read_text, glob...) is refused.
SAFE_TABLE_FUNCTIONS = {"range", "generate_series", "generateseries", "unnest"}


def _check_table_functions(stmt: Statement) -> None:
    for table in stmt.tree.find_all(exp.Table):
        fn = table.this
        if table.name or not isinstance(fn, exp.Func):
            continue
        name = (fn.name if isinstance(fn, exp.Anonymous) else fn.key).lower()
        if name not in SAFE_TABLE_FUNCTIONS:
            raise SqlRefused(f"table function {name} is not allowed: query tables by name")
