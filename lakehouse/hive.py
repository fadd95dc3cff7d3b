"""The ``hive`` catalog: external tables over raw Parquet/CSV prefixes, declared in a file.

Files that no pipeline ingests (a vendor's daily CSV drop, a Parquet export) are still worth
querying where they lie. An admin declares each such prefix once, in ``hive_tables.yaml``
(``LAKEWIRE_HIVE_TABLES_FILE``; unset means the project's file if there is one)::

    tables:
      - schema: raw
        name: co2_readings
        bucket: co2-data
        prefix: readings/
        format: csv            # or parquet
        header: true           # csv: the first line names the columns
        delimiter: ","
        columns: {station: varchar, ppm: varchar}   # optional: else read from the files

and both engines expose it as ``hive.raw.co2_readings`` from the same declaration, so the
columns and types agree: the embedded engine (``lakehouse.sql``) registers a pyarrow dataset
over the prefix's files (re-listed by every query, so a new file is seen at once); Trino gets
``CREATE TABLE hive.raw.co2_readings (...) WITH (external_location = 's3://co2-data/readings',
format = 'CSV', ...)`` from :func:`create_statements`, run by ``trino-init``
(:func:`ensure_trino_tables`).

Two rules come from Trino's Hive connector and hold on both engines, so a query answers the
same wherever it runs: only the files directly under the prefix are read (no sub-folders;
names starting with ``_`` or ``.`` are skipped, as Hive does), and CSV columns are ``varchar``
(the connector reads CSV as text only: cast in the query). The columns, when not declared, come
from the first file (its Parquet schema, or its CSV header); the same function decides them
for both engines.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lakehouse.objectstore import (
    LocalObjectStore,
    ObjectInfo,
    ObjectStore,
    StorageError,
    validate_bucket_name,
)
from lakehouse.settings import Settings
from lakehouse.sql_guard import SqlError
from lakehouse.trino import IDENT_RE, Cursor, run_statement

CATALOG = "hive"
DEFAULT_FILE = Path(__file__).resolve().parents[1] / "hive_tables.yaml"
HEADER_MAX_BYTES = 1024**2  # a CSV header line longer than this is not read

# Trino's types (as written in a declaration) and the Arrow type the embedded engine reads.
TRINO_TO_ARROW: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "double": pa.float64(),
    "varchar": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "varbinary": pa.binary(),
}
_DECIMAL_RE = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_VARCHAR_RE = re.compile(r"^varchar\(\d+\)$")


class HiveError(SqlError):
    """A declaration that cannot be used, or files that do not match it: said with the table."""


class _Declaration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: str = Field(alias="schema")
    name: str
    bucket: str
    prefix: str
    format: Literal["parquet", "csv"]
    header: bool = True
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    columns: dict[str, str] | None = None

    @field_validator("schema_", "name")
    @classmethod
    def _plain(cls, value: str) -> str:
        if not IDENT_RE.match(value):
            raise ValueError(f"'{value}' must be a lower-case name ([a-z_][a-z0-9_]*)")
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        return validate_bucket_name(value)

    @field_validator("columns")
    @classmethod
    def _types(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("columns, when given, name at least one column")
        out = {}
        for column, trino_type in value.items():
            arrow_type(trino_type)  # ValueError names the type
            out[column] = trino_type.strip().lower()
        return out


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tables: list[_Declaration] = Field(default_factory=list)


@dataclass(frozen=True)
class HiveTable:
    """One declared external table."""

    schema: str
    name: str
    bucket: str
    prefix: str  # without the trailing "/"
    format: Literal["parquet", "csv"]
    header: bool
    delimiter: str
    columns: tuple[tuple[str, str], ...] | None  # (name, Trino type), or None: from the files

    @property
    def qualified(self) -> str:
        return f"{CATALOG}.{self.schema}.{self.name}"

    @property
    def location(self) -> str:
        """Where Trino reads it (the prefix is a directory to Trino: no trailing slash)."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def arrow_type(trino_type: str) -> pa.DataType:
    """The Arrow type of a Trino type name; ValueError naming the supported ones."""
    text = trino_type.strip().lower()
    if text in TRINO_TO_ARROW:
        return TRINO_TO_ARROW[text]
    if _VARCHAR_RE.match(text):
        return pa.string()
    m = _DECIMAL_RE.match(text)
    if m and 1 <= int(m.group(1)) <= 38 and int(m.group(2)) <= int(m.group(1)):
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    raise ValueError(
        f"type '{trino_type}' is not supported (use {', '.join(TRINO_TO_ARROW)}, varchar(n) "
        "or decimal(p,s))"
    )


def trino_type(arrow: pa.DataType) -> str:
    """The Trino type a file's Arrow type is declared as (columns read from the files)."""
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    if pa.types.is_large_string(arrow) or pa.types.is_string_view(arrow):
        return "varchar"
    if pa.types.is_large_binary(arrow):
        return "varbinary"
    for name, known in TRINO_TO_ARROW.items():
        if arrow == known:
            return name
    raise ValueError(f"a column of type {arrow} has no Trino type here: declare the columns")


def parse_declarations(text: str, origin: str) -> list[HiveTable]:
    """The tables ``text`` declares; HiveError naming the file, the table and the field."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise HiveError(f"{origin}: not YAML: {exc}") from None
    try:
        declared = _File.model_validate(raw).tables
    except ValidationError as exc:
        problems = "; ".join(
            ".".join(str(p) for p in err["loc"]).replace("schema_", "schema") + ": " + err["msg"]
            for err in exc.errors()
        )
        raise HiveError(f"{origin}: {problems}") from None
    tables: list[HiveTable] = []
    seen: set[tuple[str, str]] = set()
    for i, d in enumerate(declared):
        if (d.schema_, d.name) in seen:
            raise HiveError(
                f"{origin}: tables.{i}: {CATALOG}.{d.schema_}.{d.name} is declared twice"
            )
        seen.add((d.schema_, d.name))
        if d.format == "csv" and d.columns and any(t != "varchar" for t in d.columns.values()):
            raise HiveError(
                f"{origin}: tables.{i} ({d.schema_}.{d.name}): CSV columns are varchar (Trino's "
                "Hive connector reads CSV as text): cast them in the query"
            )
        if d.format == "csv" and not d.header and not d.columns:
            raise HiveError(
                f"{origin}: tables.{i} ({d.schema_}.{d.name}): a CSV without a header needs "
                "its columns declared"
            )
        columns = tuple(d.columns.items()) if d.columns else None
        prefix = d.prefix.strip("/")
        tables.append(
            HiveTable(d.schema_, d.name, d.bucket, prefix, d.format, d.header, d.delimiter, columns)
        )
    return tables


def load_declarations(settings: Settings) -> list[HiveTable]:
    """The declared tables: ``hive_tables_file``, else the project's file, else none."""
    path = settings.hive_tables_file
    if path is None:
        if not DEFAULT_FILE.is_file():
            return []
        path = DEFAULT_FILE
    try:
        text = path.read_text()
    except OSError as exc:
        raise HiveError(f"cannot read the hive tables file {path}: {exc}") from None
    return parse_declarations(text, str(path))


class HiveCatalog:
    """The declared tables over one store: their files, columns and Arrow datasets."""

    def __init__(self, settings: Settings, store: ObjectStore) -> None:
        self.settings = settings
        self.store = store
        self._tables: dict[tuple[str, str], HiveTable] | None = None

    @property
    def tables(self) -> dict[tuple[str, str], HiveTable]:
        """Read once per catalog (an engine): a bad file fails hive queries, not the others."""
        if self._tables is None:
            self._tables = {(t.schema, t.name): t for t in load_declarations(self.settings)}
        return self._tables

    def schemas(self) -> list[str]:
        return sorted({schema for schema, _ in self.tables})

    def table_names(self, schema: str) -> list[str]:
        return sorted(name for s, name in self.tables if s == schema)

    def table(self, schema: str, name: str) -> HiveTable | None:
        return self.tables.get((schema, name))

    def files(self, table: HiveTable) -> list[ObjectInfo]:
        """The data files directly under the prefix, in key order (Hive's rules)."""
        prefix = f"{table.prefix}/" if table.prefix else ""
        out: list[ObjectInfo] = []
        cursor = None
        try:
            while True:
                page = self.store.list_page(table.bucket, prefix, "/", cursor, limit=1000)
                out.extend(
                    o for o in page.objects if not o.key[len(prefix) :].startswith(("_", "."))
                )
                cursor = page.next_cursor
                if not cursor:
                    break
        except StorageError as exc:
            raise HiveError(
                f"{table.qualified}: cannot list s3://{table.bucket}/{prefix}: {exc}"
            ) from None
        return sorted(out, key=lambda o: o.key)

    def schema(self, table: HiveTable, files: list[ObjectInfo] | None = None) -> pa.Schema:
        """The table's columns: declared, or read from its first file."""
        if table.columns is not None:
            return pa.schema([(n, arrow_type(t)) for n, t in table.columns])
        files = self.files(table) if files is None else files
        if not files:
            raise HiveError(
                f"{table.qualified}: no files under s3://{table.bucket}/{table.prefix} to read "
                "its columns from: declare them"
            )
        first = self._paths(table, [files[0]])[0]
        fs = self._filesystem()
        try:
            if table.format == "parquet":
                import pyarrow.parquet as pq

                found = pq.read_schema(first, filesystem=fs)
                try:
                    return pa.schema([(f.name, arrow_type(trino_type(f.type))) for f in found])
                except ValueError as exc:
                    raise HiveError(f"{table.qualified}: {exc}") from None
            import pyarrow.csv as pcsv

            # The header line only: a ranged read of the file's start, never a stream left
            # half-read (S3 connections stay clean for the scan that follows).
            with fs.open_input_file(first) as fh:
                head = bytes(fh.read_at(min(fh.size(), HEADER_MAX_BYTES), 0))
            line = head.split(b"\n", 1)[0]
            opts = pcsv.ParseOptions(delimiter=table.delimiter)
            names = pcsv.read_csv(io.BytesIO(line + b"\n"), parse_options=opts).column_names
        except (OSError, pa.ArrowInvalid) as exc:
            raise HiveError(f"{table.qualified}: cannot read {files[0].key}: {exc}") from None
        return pa.schema([(n, pa.string()) for n in names])

    def dataset(self, table: HiveTable, files: list[ObjectInfo]) -> Any:
        """A re-scannable pyarrow dataset over ``files`` (``files(table)``), with the table's
        columns: projections and filters are pushed into its scan."""
        import pyarrow.dataset as ds

        schema = self.schema(table, files)
        if not files:
            return schema.empty_table()
        fmt: Any
        if table.format == "parquet":
            fmt = ds.ParquetFileFormat()
        else:
            import pyarrow.csv as pcsv

            fmt = ds.CsvFileFormat(
                parse_options=pcsv.ParseOptions(delimiter=table.delimiter),
                read_options=pcsv.ReadOptions(
                    column_names=schema.names, skip_rows=1 if table.header else 0
                ),
                convert_options=pcsv.ConvertOptions(
                    column_types={n: pa.string() for n in schema.names}
                ),
            )
        try:
            return ds.dataset(
                self._paths(table, files), schema=schema, format=fmt, filesystem=self._filesystem()
            )
        except (OSError, pa.ArrowInvalid) as exc:
            raise HiveError(f"{table.qualified}: {exc}") from None

    def _paths(self, table: HiveTable, files: list[ObjectInfo]) -> list[str]:
        if isinstance(self.store, LocalObjectStore):
            return [str(self.store.bucket_path(table.bucket) / o.key) for o in files]
        return [f"{table.bucket}/{o.key}" for o in files]

    def _filesystem(self) -> Any:
        """Local paths, or pyarrow's S3 client with the store's endpoint and credentials."""
        from pyarrow import fs

        if isinstance(self.store, LocalObjectStore):
            return fs.LocalFileSystem()
        s = self.settings
        endpoint = s.s3_endpoint or ""
        scheme = "http" if endpoint.startswith("http://") else "https"
        return fs.S3FileSystem(
            access_key=s.s3_access_key.get_secret_value() if s.s3_access_key else None,
            secret_key=s.s3_secret_key.get_secret_value() if s.s3_secret_key else None,
            region=s.s3_region,
            endpoint_override=endpoint.split("://", 1)[-1] or None,
            scheme=scheme,
            force_virtual_addressing=not s.s3_path_style,
        )


# -- Trino ----------------------------------------------------------------------------------------
def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def create_table_sql(table: HiveTable, schema: pa.Schema) -> str:
    """Trino's ``CREATE TABLE`` of the external table (Hive connector, "Table properties")."""
    columns = ", ".join(
        f'"{f.name.replace(chr(34), chr(34) * 2)}" {trino_type(f.type)}' for f in schema
    )
    props = [
        f"external_location = {_literal(table.location)}",
        f"format = {_literal(table.format.upper())}",
    ]
    if table.format == "csv":
        props.append(f"csv_separator = {_literal(table.delimiter)}")
        if table.header:
            props.append("skip_header_line_count = 1")
    return f"CREATE TABLE {table.qualified} ({columns}) WITH ({', '.join(props)})"


def create_statements(catalog: HiveCatalog) -> dict[str, str]:
    """Each declared table's ``CREATE TABLE``, by qualified name. All columns are decided here,
    before Trino is touched, so a bad declaration changes nothing there."""
    return {t.qualified: create_table_sql(t, catalog.schema(t)) for t in catalog.tables.values()}


def ensure_trino_tables(cur: Cursor, catalog: HiveCatalog, creates: dict[str, str]) -> list[str]:
    """Make Trino's ``hive`` catalog hold the declared tables as ``creates`` defines them
    (trino-init, as the principal that may write): the schemas, then each table created, or
    dropped and created again so an edited declaration replaces it. Only an external table is
    ever dropped (its files stay); a managed table of the same name (made by hand in Trino,
    whose drop would delete its files) is an error, never dropped."""
    for schema in catalog.schemas():
        run_statement(cur, f"CREATE SCHEMA IF NOT EXISTS {CATALOG}.{schema}")
    for table in catalog.tables.values():
        exists = run_statement(
            cur,
            f"SELECT count(*) FROM {CATALOG}.information_schema.tables "
            f"WHERE table_schema = {_literal(table.schema)} "
            f"AND table_name = {_literal(table.name)}",
        )
        if exists and exists[0][0]:
            ddl = str(run_statement(cur, f"SHOW CREATE TABLE {table.qualified}")[0][0])
            if "external_location" not in ddl:
                raise HiveError(
                    f"{table.qualified} is a managed table in Trino, not the declared external "
                    "one: dropping it would delete its files, so it is left; rename the "
                    "declaration or drop the table by hand"
                )
            run_statement(cur, f"DROP TABLE {table.qualified}")
        run_statement(cur, creates[table.qualified])
    return list(creates)
