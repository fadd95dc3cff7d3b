"""Delta Lake writes with the ingestion ledger in the same commit (application transactions).

Every write (append, merge, partition overwrite, delete) carries a ``txn`` action per source
object, so the rows and the record that they were written are one atomic commit: a re-run that
finds the ``txn`` writes nothing, and a run that died before its commit left no rows behind.

Concurrent writers (four ingestion processes on one table) rely on delta-rs's optimistic
concurrency: a write commits against the snapshot its ledger was read from, so a winning commit
that recorded the same ``txn`` since then fails ours (``CommitConflict``) instead of adding the
rows a second time; committing against the latest version (a table URI) would skip that check.
"""

from __future__ import annotations

import datetime as dt_
from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from lakehouse.delta_ledger import app_transactions
from lakehouse.failpoints import failpoint
from lakehouse.objectstore import ObjectStore
from lakehouse.tables import (
    COLUMN_NAMING_PROPERTY,
    RUN_ID_PROPERTY,
    SOURCE_URI,
    ColumnNaming,
    CommitConflict,
    SourceVersion,
    TableRef,
    WriteSpec,
    naming_of,
    new_columns_only,
    polars_schema,
)

BULK_LEDGER_IDS = 32
"""From this many sources on, a ledger check reads the log once instead of asking per source."""


def open_table(uri: str, storage_options: dict[str, str]) -> DeltaTable | None:
    try:
        return DeltaTable(uri, storage_options=storage_options or None)
    except TableNotFoundError:
        return None


def _props(txns: dict[str, int], note: str, count: int, run_id: str = "") -> CommitProperties:
    meta = {"lakewire.operation": note, "lakewire.sources": str(count)}
    if run_id:
        meta[RUN_ID_PROPERTY] = run_id
    return CommitProperties(
        app_transactions=[Transaction(app_id=a, version=v) for a, v in txns.items()],
        custom_metadata=meta,
    )


def sql_literal(value: object) -> str:
    """A value as a predicate literal (partition values and source URIs)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt_.datetime | dt_.date):
        return f"'{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def partition_predicate(partitions: list[dict[str, object]]) -> str:
    """``(p = v AND q = w) OR ...``: exactly the partitions a batch replaces."""
    terms = []
    for values in partitions:
        parts = [
            f"{_ident(c)} IS NULL" if v is None else f"{_ident(c)} = {sql_literal(v)}"
            for c, v in values.items()
        ]
        terms.append("(" + " AND ".join(parts) + ")")
    return " OR ".join(terms)


@dataclass
class DeltaTarget:
    uri: str
    storage_options: dict[str, str]
    ref: TableRef
    # Where the table lives in the store (lake bucket, table prefix): its log is read from there
    # in one pass for large ledger checks (lakehouse/delta_ledger.py).
    store: ObjectStore | None = field(default=None, repr=False)
    location: tuple[str, str] | None = None
    # The snapshot the last ledger read saw (``None``: no table yet), the next write's base.
    _read: DeltaTable | None = field(default=None, repr=False)
    _pinned: bool = field(default=False, repr=False)

    def _table(self) -> DeltaTable | None:
        return open_table(self.uri, self.storage_options)

    def _base(self) -> DeltaTable | None:
        """The snapshot to commit against: the one the ledger was read from, once."""
        read, pinned = self._read, self._pinned
        self._read, self._pinned = None, False
        return read if pinned else self._table()

    def schema(self) -> pl.Schema | None:
        dt = self._table()
        return None if dt is None else polars_schema(pa.schema(dt.schema().to_arrow()))

    def column_naming(self) -> ColumnNaming | None:
        dt = self._table()
        if dt is None:
            return None
        value = dt.metadata().configuration.get(COLUMN_NAMING_PROPERTY)
        if value == "snake_case":
            return "snake_case"
        if value == "as_is":
            return "as_is"
        # No property: a table from before issue 9 (as_is), or one whose property commit, the
        # one after its first write, never happened (its columns carry their original names).
        return naming_of(pa.schema(dt.schema().to_arrow()))

    def ledger(self, ids: Iterable[str]) -> dict[str, int | None]:
        dt = self._table()
        self._read, self._pinned = dt, True
        ids = list(ids)
        if dt is None:
            return dict.fromkeys(ids)
        return self._ledger_of(dt, ids)

    def _ledger_of(self, dt: DeltaTable, ids: list[str]) -> dict[str, int | None]:
        if len(ids) >= BULK_LEDGER_IDS and self.store is not None and self.location is not None:
            txns = app_transactions(self.store, *self.location, dt.version())
            if txns is not None:
                return {i: txns.get(i) for i in ids}
        return {i: dt.transaction_version(i) for i in ids}

    def write(
        self,
        data: pa.RecordBatchReader,
        sources: list[SourceVersion],
        spec: WriteSpec,
        partitions: list[dict[str, object]],
        run_id: str = "",
    ) -> int | None:
        props = _props({s.app_id: s.version for s in sources}, spec.mode, len(sources), run_id)
        dt = self._base()
        if dt is None:
            dt = self._create(data.schema, spec)
            taken = self._ledger_of(dt, [s.app_id for s in sources])
            if any(v is not None for v in taken.values()):
                raise CommitConflict(f"{self.ref.qualified}: another writer took these objects")
        try:
            self._write(dt, data, spec, partitions, props)
        except CommitFailedError as exc:
            raise CommitConflict(f"{self.ref.qualified}: {exc}") from exc
        # The rows and their ledger entries are committed; the run has not finished, so a
        # crash here leaves a failed run whose objects the next run takes again.
        failpoint("delta.after_commit")
        latest = self._table()
        return latest.version() if latest else None

    def _create(self, schema: pa.Schema, spec: WriteSpec) -> DeltaTable:
        """Create the table with no rows, or find the one a concurrent writer just created.

        A first write that carried rows would have no snapshot to be checked against: two
        writers creating the table at once could both commit the same objects.
        """
        try:
            write_deltalake(
                self.uri,
                schema.empty_table(),
                mode="error",
                partition_by=list(spec.partition_by) or None,
                storage_options=self.storage_options or None,
                # The table's history says what this empty first version is.
                commit_properties=CommitProperties(
                    custom_metadata={"lakewire.operation": "create"}
                ),
            )
        except (CommitFailedError, DeltaError):
            dt = self._table()
            if dt is None:
                raise
            return dt  # the winner records the naming property
        dt = self._table()
        assert dt is not None
        return self._set_naming(dt, naming_of(schema))

    def _write(
        self,
        dt: DeltaTable,
        data: pa.RecordBatchReader,
        spec: WriteSpec,
        partitions: list[dict[str, object]],
        props: CommitProperties,
    ) -> None:
        opts = self.storage_options or None
        # Original names are recorded when a column is added (at creation too), not after.
        data = data.cast(new_columns_only(data.schema, dt.schema().to_arrow().names))
        partition_by = list(spec.partition_by) or None
        if spec.mode == "merge":
            predicate = " AND ".join(f"t.{_ident(k)} = s.{_ident(k)}" for k in spec.merge_keys)
            (
                dt.merge(
                    source=data.read_all(),
                    predicate=predicate,
                    source_alias="s",
                    target_alias="t",
                    merge_schema=True,
                    commit_properties=props,
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
        elif spec.mode == "overwrite" and partitions:
            write_deltalake(
                dt,
                data,
                mode="overwrite",
                predicate=partition_predicate(partitions),
                schema_mode="merge",
                storage_options=opts,
                commit_properties=props,
            )
        else:
            write_deltalake(
                dt,
                data,
                mode="append",
                partition_by=partition_by,
                schema_mode="merge",
                storage_options=opts,
                commit_properties=props,
            )

    def _set_naming(self, dt: DeltaTable, naming: ColumnNaming) -> DeltaTable:
        """delta-rs refuses non-delta keys in write/create configuration, so a second commit;
        a concurrent writer's commit in between is retried on the newer version."""
        for _ in range(10):
            try:
                dt.alter.set_table_properties(
                    {COLUMN_NAMING_PROPERTY: naming}, raise_if_not_exists=False
                )
                break
            except CommitFailedError:
                dt = self._table() or dt
        return self._table() or dt

    def delete_sources(self, removed: list[SourceVersion]) -> int | None:
        dt = self._base()
        if dt is None or not removed:
            return None
        uris = ", ".join(sql_literal(s.uri) for s in removed)
        try:
            dt.delete(
                predicate=f"{SOURCE_URI} IN ({uris})",
                commit_properties=_props(
                    {s.removal_id: s.version for s in removed}, "delete", len(removed)
                ),
            )
        except CommitFailedError as exc:
            raise CommitConflict(f"{self.ref.qualified}: {exc}") from exc
        return dt.version()

    def row_count(self) -> int:
        if self._table() is None:
            return 0
        lf = pl.scan_delta(self.uri, storage_options=self.storage_options or None)
        return int(lf.select(pl.len()).collect().item())
