"""Where tables live, and the ledger that makes every write exactly-once.

Delta tables are ``<lake bucket>/<schema>/<table>``; Iceberg tables are in the catalog with
their warehouse at ``<lake bucket>/iceberg``. Each source object that feeds a table is recorded
in the same commit as its rows: as a Delta application transaction (``txn`` action, app id =
source URI + etag, version = the object's sequencer) or as an Iceberg snapshot property. The
etag is the object's content identity (MD5 on both backends, as S3 and MinIO compute it), so a
replayed event, a re-run or a re-upload of the same bytes finds its ledger entry and adds no
rows, while new content under the same key is new data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import polars as pl
import pyarrow as pa

from lakehouse.objectstore import ObjectStore
from lakehouse.settings import Settings

# The lineage columns every ingested row carries (docs/routes.md). Deleting a removed object's
# rows matches on its URI.
SOURCE_URI = "_source_uri"
# The commit property (Delta commit info, Iceberg snapshot summary) naming the run that wrote it.
RUN_ID_PROPERTY = "lakewire.run_id"
LINEAGE_SCHEMA = pl.Schema(
    {
        SOURCE_URI: pl.String(),
        "_source_etag": pl.String(),
        "_run_id": pl.String(),
        "_ingested_at": pl.Datetime("us", "UTC"),
    }
)
LINEAGE_COLUMNS = tuple(LINEAGE_SCHEMA.names())


@dataclass(frozen=True)
class SourceVersion:
    """One version of one source object: the unit of exactly-once."""

    bucket: str
    key: str
    etag: str
    sequencer: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def app_id(self) -> str:
        return f"lakewire:{self.bucket}/{self.key}#{self.etag}"

    @property
    def removal_id(self) -> str:
        """Ledger id of "this key's rows were deleted", whatever version it had."""
        return f"lakewire-removed:{self.bucket}/{self.key}"

    @property
    def version(self) -> int:
        """Sequencers are nanosecond timestamps in hex: newer versions compare greater."""
        try:
            value = int(self.sequencer, 16)
            if 0 <= value < 2**63:  # ledger versions are signed 64-bit
                return value
        except ValueError:
            pass
        return int(hashlib.sha256(self.etag.encode()).hexdigest()[:15], 16)


def lineage_columns(src: SourceVersion, run_id: str, ingested_at: datetime) -> list[pl.Expr]:
    """Expressions that add ``LINEAGE_COLUMNS`` to the rows read from ``src``."""
    values = (src.uri, src.etag, run_id, ingested_at)
    return [
        pl.lit(value, dtype).alias(name)
        for (name, dtype), value in zip(LINEAGE_SCHEMA.items(), values, strict=True)
    ]


def lineage_frame(
    sources: Sequence[SourceVersion], heights: Sequence[int], run_id: str, ingested_at: datetime
) -> pl.DataFrame:
    """``LINEAGE_COLUMNS`` for the rows of ``sources`` read one after another (``heights[i]``
    rows each), built once: an expression per object cost more than reading a small one."""
    uri, etag, run, at = LINEAGE_COLUMNS
    per_source = pl.DataFrame(
        {uri: [s.uri for s in sources], etag: [s.etag for s in sources], "_rows": heights},
        schema={uri: pl.String(), etag: pl.String(), "_rows": pl.UInt32()},
    )
    rows = (
        per_source.filter(pl.col("_rows") > 0)
        .select(pl.col(uri, etag).repeat_by("_rows"))
        .explode([uri, etag])
    )
    return rows.with_columns(
        pl.lit(run_id, LINEAGE_SCHEMA[run]).alias(run),
        pl.lit(ingested_at, LINEAGE_SCHEMA[at]).alias(at),
    )


TableFormat = Literal["delta", "iceberg"]
TABLE_FORMATS: tuple[TableFormat, ...] = ("delta", "iceberg")


def table_format(name: str) -> TableFormat:
    """``name`` as a table format; ``ValueError`` unless it is delta or iceberg."""
    for fmt in TABLE_FORMATS:
        if name == fmt:
            return fmt
    raise ValueError(f"unknown table format '{name}' (use delta or iceberg)")


@dataclass(frozen=True)
class TableRef:
    format: TableFormat
    schema: str
    name: str

    @classmethod
    def parse(cls, qualified: str) -> TableRef:
        """``format.schema.name`` (the run config's and the tags' spelling) as a reference."""
        fmt, schema, name = qualified.split(".", 2)
        return cls(table_format(fmt), schema, name)

    @property
    def qualified(self) -> str:
        return f"{self.format}.{self.schema}.{self.name}"


def delta_table_uri(settings: Settings, store: ObjectStore, ref: TableRef) -> str:
    return store.url(settings.lake_bucket, f"{ref.schema}/{ref.name}")


WriteMode = Literal["append", "merge", "overwrite"]


@dataclass(frozen=True)
class WriteSpec:
    """How a batch lands in its table (from the route)."""

    mode: WriteMode = "append"
    merge_keys: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()


# How a table names its columns (DECISIONS "Column names (9)"): a table created since issue 9
# has SQL-safe snake_case names, each column's header in its first source object kept as field
# metadata; a table created before keeps the objects' own names. The table property records it.
ColumnNaming = Literal["snake_case", "as_is"]
COLUMN_NAMING_PROPERTY = "lakewire.column_names"
ORIGINAL_NAME_KEY = "lakewire.original_name"


def with_original_names(schema: pa.Schema, columns: Iterable[Mapping[str, str]]) -> pa.Schema:
    """``schema`` with each column's name in its source objects as field metadata (the first
    object's wins): ``lakewire.original_name`` always, and ``comment``/``doc`` (the column
    comment Trino and Spark show for Delta, pyiceberg's field doc for Iceberg) when it differs."""
    names: dict[str, str] = {}
    for mapping in columns:
        for col, original in mapping.items():
            names.setdefault(col, original)
    if not names:
        return schema
    fields = []
    for f in schema:
        if f.name in names:
            original = names[f.name]
            meta = {ORIGINAL_NAME_KEY: original}
            if original != f.name:
                meta |= {"comment": original, "doc": original}
            f = f.with_metadata(meta)
        fields.append(f)
    return pa.schema(fields)


def new_columns_only(schema: pa.Schema, existing: Collection[str]) -> pa.Schema:
    """``schema`` with the metadata of the columns a table already has dropped: a table keeps
    what it first recorded (and Delta refuses to merge a different value)."""
    return pa.schema([f.remove_metadata() if f.name in existing else f for f in schema])


def naming_of(schema: pa.Schema) -> ColumnNaming:
    """The naming a table is created with: snake_case when its columns were renamed so (each
    then carries its original name)."""
    key = ORIGINAL_NAME_KEY.encode()
    return "snake_case" if any(f.metadata and key in f.metadata for f in schema) else "as_is"


class CommitConflict(RuntimeError):
    """Another writer committed to the table after this batch read its ledger: the batch is
    redone from the ledger (it may find its objects already in), never committed blind."""


class TableTarget(Protocol):
    """One Delta or Iceberg table, written only together with its ledger entries."""

    ref: TableRef

    def schema(self) -> pl.Schema | None:
        """The table's columns, or ``None`` before the first commit."""
        ...

    def column_naming(self) -> ColumnNaming | None:
        """The naming the table was created with (``None`` before the first commit)."""
        ...

    def ledger(self, ids: Iterable[str]) -> dict[str, int | None]:
        """The ledger version recorded for each id (``None``: never recorded); the next write
        commits against the table as read here and raises ``CommitConflict`` if a concurrent
        commit since then makes that unsafe."""
        ...

    def write(
        self,
        data: pa.RecordBatchReader,
        sources: list[SourceVersion],
        spec: WriteSpec,
        partitions: list[dict[str, object]],
        run_id: str = "",
    ) -> int | None:
        """Commit the rows and every source's ledger entry atomically; returns the version.
        ``run_id`` is recorded on the commit, so the table's history names the run."""
        ...

    def delete_sources(self, removed: list[SourceVersion]) -> int | None:
        """Delete the rows of removed objects, recording the removals in the same commit."""
        ...

    def row_count(self) -> int: ...


def pending_sources(target: TableTarget, sources: Iterable[SourceVersion]) -> list[SourceVersion]:
    """Sources whose content the table holds no rows of.

    A content version is done once its ledger entry exists, unless the key's rows were deleted
    (an ``ObjectRemoved`` with the delete policy) after it was ingested and this event is newer
    than that deletion: a re-upload of the same bytes after a delete is new data again.
    """
    sources = list(sources)
    ids = {s.app_id for s in sources} | {s.removal_id for s in sources}
    seen = target.ledger(ids)
    out = []
    for s in sources:
        done = seen.get(s.app_id)
        removed = seen.get(s.removal_id)
        if done is None or (removed is not None and removed >= done and s.version > removed):
            out.append(s)
    return out


def open_target(settings: Settings, store: ObjectStore, ref: TableRef) -> TableTarget:
    if ref.format == "delta":
        from lakehouse.delta import DeltaTarget

        return DeltaTarget(
            delta_table_uri(settings, store, ref),
            store.storage_options(),
            ref,
            store=store,
            location=(settings.lake_bucket, f"{ref.schema}/{ref.name}"),
        )
    if ref.format == "iceberg":
        from lakehouse.iceberg import IcebergTarget

        return IcebergTarget(settings, store, ref)
    raise ValueError(f"unknown table format '{ref.format}' (use delta or iceberg)")


def arrow_schema(schema: pl.Schema) -> pa.Schema:
    return pl.DataFrame(schema=schema).to_arrow().schema


def polars_schema(schema: pa.Schema) -> pl.Schema:
    return pl.DataFrame(schema.empty_table()).schema
