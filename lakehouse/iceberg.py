"""Iceberg tables through pyiceberg: SQL catalog (SQLite) embedded, REST catalog on the platform.

The ingestion ledger lives in the snapshot summary of each commit (``lakewire.ledger``: the
source ids and versions the snapshot wrote), so rows and ledger are one atomic catalog commit.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from lakehouse.objectstore import ObjectStore, S3ObjectStore
from lakehouse.settings import Settings
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

if TYPE_CHECKING:  # pyiceberg is imported only where used: it costs seconds at import
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table, Transaction
    from pyiceberg.table.snapshots import Snapshot

LEDGER_PROPERTY = "lakewire.ledger"


def catalog(settings: Settings, store: ObjectStore) -> Catalog:
    """The REST catalog when ``iceberg_rest_uri`` is set (platform), else the SQLite one."""
    props: dict[str, str] = {"warehouse": store.url(settings.lake_bucket, "iceberg")}
    if isinstance(store, S3ObjectStore):
        s = settings
        props.update(
            {
                "s3.endpoint": s.s3_endpoint or "",
                "s3.access-key-id": s.s3_access_key.get_secret_value() if s.s3_access_key else "",
                "s3.secret-access-key": (
                    s.s3_secret_key.get_secret_value() if s.s3_secret_key else ""
                ),
                "s3.region": s.s3_region,
            }
        )
    rest_uri = settings.iceberg_rest_uri
    if rest_uri:
        from pyiceberg.catalog.rest import RestCatalog

        if settings.iceberg_rest_warehouse:
            props["warehouse"] = settings.iceberg_rest_warehouse
        return RestCatalog("lakewire", uri=rest_uri, **props)
    from pyiceberg.catalog.sql import SqlCatalog

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return SqlCatalog("lakewire", uri=settings.iceberg_catalog_uri, **props)


def load_table(settings: Settings, store: ObjectStore, ref: TableRef) -> Table | None:
    from pyiceberg.exceptions import NoSuchTableError

    try:
        return catalog(settings, store).load_table((ref.schema, ref.name))
    except NoSuchTableError:
        return None


def _summary_ledger(snapshot: Snapshot) -> dict[str, int]:
    raw = snapshot.summary.additional_properties.get(LEDGER_PROPERTY) if snapshot.summary else None
    return json.loads(raw) if raw else {}


class IcebergTarget:
    def __init__(self, settings: Settings, store: ObjectStore, ref: TableRef) -> None:
        self.settings = settings
        self.store = store
        self.ref = ref

    def _table(self) -> Table | None:
        return load_table(self.settings, self.store, self.ref)

    def schema(self) -> pl.Schema | None:
        table = self._table()
        return None if table is None else polars_schema(table.schema().as_arrow())

    def column_naming(self) -> ColumnNaming | None:
        table = self._table()
        if table is None:
            return None
        value = table.properties.get(COLUMN_NAMING_PROPERTY)
        return "snake_case" if value == "snake_case" else "as_is"  # none: from before issue 9

    def ledger(self, ids: Iterable[str]) -> dict[str, int | None]:
        table = self._table()
        # snapshots expired by maintenance (issue 12) left their ledger in the table property
        seen: dict[str, int] = (
            json.loads(table.properties.get(LEDGER_PROPERTY, "{}")) if table else {}
        )
        for snap in table.snapshots() if table is not None else []:
            for app_id, version in _summary_ledger(snap).items():
                seen[app_id] = max(version, seen.get(app_id, version))
        return {i: seen.get(i) for i in ids}

    def _create(self, schema: pa.Schema, spec: WriteSpec) -> Table:
        from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError

        cat = catalog(self.settings, self.store)
        with contextlib.suppress(NamespaceAlreadyExistsError):
            cat.create_namespace(self.ref.schema)
        try:
            table = cat.create_table(
                (self.ref.schema, self.ref.name),
                schema=schema,
                properties={COLUMN_NAMING_PROPERTY: naming_of(schema)},
            )
        except TableAlreadyExistsError:
            return cat.load_table((self.ref.schema, self.ref.name))
        if spec.partition_by:
            with table.update_spec() as update:
                for col in spec.partition_by:
                    update.add_identity(col)
            table = cat.load_table((self.ref.schema, self.ref.name))
        return table

    def write(
        self,
        data: pa.RecordBatchReader,
        sources: list[SourceVersion],
        spec: WriteSpec,
        partitions: list[dict[str, object]],
        run_id: str = "",
    ) -> int | None:
        from pyiceberg.expressions import And, BooleanExpression, EqualTo, IsNull, Or, Reference
        from pyiceberg.expressions.literals import literal

        props = {
            LEDGER_PROPERTY: json.dumps({s.app_id: s.version for s in sources}),
            "lakewire.operation": spec.mode,
            "lakewire.sources": str(len(sources)),
        }
        if run_id:
            props[RUN_ID_PROPERTY] = run_id
        table = self._table() or self._create(data.schema, spec)
        # Columns the table has keep the docs they were created with.
        data = data.cast(new_columns_only(data.schema, [f.name for f in table.schema().fields]))
        if spec.mode == "merge":
            rows = data.read_all()
            self._evolve(table, rows.schema)
            table.upsert(rows, join_cols=list(spec.merge_keys), snapshot_properties=props)
        elif spec.mode == "overwrite" and partitions:
            # Keyword arguments: pyiceberg's predicates are pydantic models, and type checkers
            # see only their field constructors, not the positional shorthand.
            terms: list[BooleanExpression] = []
            for values in partitions:
                conds: list[BooleanExpression] = [
                    IsNull(term=Reference(c))
                    if v is None
                    else EqualTo(term=Reference(c), value=literal(v))
                    for c, v in values.items()
                ]
                terms.append(conds[0] if len(conds) == 1 else And(*conds))
            flt = terms[0] if len(terms) == 1 else Or(*terms)
            rows = data.read_all()
            with table.transaction() as tx:
                self._evolve_in(tx, table, rows.schema)
                tx.overwrite(rows, overwrite_filter=flt, snapshot_properties=props)
        else:
            with table.transaction() as tx:
                self._evolve_in(tx, table, data.schema)
                tx.append(data, snapshot_properties=props)
        return self._snapshot_id()

    def _snapshot_id(self) -> int | None:
        """The current snapshot as the catalog has it now (after a commit: that commit's)."""
        table = self._table()
        snap = table.current_snapshot() if table is not None else None
        return snap.snapshot_id if snap else None

    @staticmethod
    def _new_columns(table: Table, schema: pa.Schema) -> bool:
        have = {f.name for f in table.schema().fields}
        return any(name not in have for name in schema.names)

    def _evolve(self, table: Table, schema: pa.Schema) -> None:
        if self._new_columns(table, schema):
            with table.update_schema() as update:
                update.union_by_name(schema)

    def _evolve_in(self, tx: Transaction, table: Table, schema: pa.Schema) -> None:
        if self._new_columns(table, schema):
            with tx.update_schema() as update:
                update.union_by_name(schema)

    def delete_sources(self, removed: list[SourceVersion]) -> int | None:
        from pyiceberg.expressions import In, Reference
        from pyiceberg.expressions.literals import literal

        table = self._table()
        if table is None or not removed:
            return None
        props = {LEDGER_PROPERTY: json.dumps({s.removal_id: s.version for s in removed})}
        uris = In(term=Reference(SOURCE_URI), values={literal(s.uri) for s in removed})
        table.delete(uris, snapshot_properties=props)
        return self._snapshot_id()

    def row_count(self) -> int:
        table = self._table()
        snap = table.current_snapshot() if table is not None else None
        if snap is None or snap.summary is None:
            return 0
        return int(snap.summary.additional_properties.get("total-records", 0))
