"""Delta Lake writes with the ingestion ledger in the same commit (application transactions).

Every write (append, merge, partition overwrite, delete) carries a ``txn`` action per source
object, so the rows and the record that they were written are one atomic commit: a re-run that
finds the ``txn`` writes nothing, and a run that died before its commit left no rows behind.
"""

from __future__ import annotations

import datetime as dt_
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError

from lakehouse.tables import (
    COLUMN_NAMING_PROPERTY,
    RUN_ID_PROPERTY,
    SOURCE_URI,
    ColumnNaming,
    SourceVersion,
    TableRef,
    WriteSpec,
    naming_of,
    new_columns_only,
    polars_schema,
)


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

    def _table(self) -> DeltaTable | None:
        return open_table(self.uri, self.storage_options)

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
        return {i: (dt.transaction_version(i) if dt else None) for i in ids}

    def write(
        self,
        data: pa.RecordBatchReader,
        sources: list[SourceVersion],
        spec: WriteSpec,
        partitions: list[dict[str, object]],
        run_id: str = "",
    ) -> int | None:
        props = _props({s.app_id: s.version for s in sources}, spec.mode, len(sources), run_id)
        opts = self.storage_options or None
        dt = self._table()
        naming = naming_of(data.schema) if dt is None else None
        if dt is not None:  # original names are recorded when a column is added, not after
            data = data.cast(new_columns_only(data.schema, dt.schema().to_arrow().names))
        partition_by = list(spec.partition_by) or None
        if dt is not None and spec.mode == "merge":
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
        elif dt is not None and spec.mode == "overwrite" and partitions:
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
                self.uri,
                data,
                mode="append",
                partition_by=partition_by,
                schema_mode="merge",
                storage_options=opts,
                commit_properties=props,
            )
        dt = self._table()
        if dt is not None and naming is not None:
            # delta-rs refuses non-delta keys in write/create configuration, so a second commit
            dt.alter.set_table_properties(
                {COLUMN_NAMING_PROPERTY: naming}, raise_if_not_exists=False
            )
            dt = self._table()
        return dt.version() if dt else None

    def delete_sources(self, removed: list[SourceVersion]) -> int | None:
        dt = self._table()
        if dt is None or not removed:
            return None
        uris = ", ".join(sql_literal(s.uri) for s in removed)
        dt.delete(
            predicate=f"{SOURCE_URI} IN ({uris})",
            commit_properties=_props(
                {s.removal_id: s.version for s in removed}, "delete", len(removed)
            ),
        )
        return dt.version()

    def row_count(self) -> int:
        if self._table() is None:
            return 0
        lf = pl.scan_delta(self.uri, storage_options=self.storage_options or None)
        return int(lf.select(pl.len()).collect().item())
