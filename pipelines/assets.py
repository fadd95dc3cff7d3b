"""One Dagster asset per target table, and the quarantine check on each.

Tables are written by the sensor-driven ingestion job (runtime materializations), so the assets
are declared as specs, not computed by Dagster. A route with a fixed table declares its asset
up front. A pattern route (``default.{dataset}``) creates tables as data arrives: its tables
are declared from what exists in the lake when the code location loads, and a new one shows up
in the catalog with its first materialization, becoming a declared asset (with its check) at
the next reload. That keeps the routes file the only thing to edit, with no per-dataset list.
"""

import re
from collections.abc import Collection, Iterator

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetSpec,
    MetadataValue,
    TableSchema,
    multi_asset_check,
)

from lakehouse.objectstore import ObjectStore
from lakehouse.quarantine import QuarantineRecord, list_quarantined
from lakehouse.routes import Route
from lakehouse.settings import Settings
from lakehouse.tables import TableRef
from lakehouse.trino import TrinoError, register_delta_table
from pipelines.resources import LakewireResource

CHECK_NAME = "no_quarantined_objects"
TRINO_CHECK_NAME = "visible_in_trino"

# The metadata values the table assets, checks and ingestion runs report (Dagster takes these
# and more).
Metadata = dict[str, MetadataValue | TableSchema | str | int | float | None]


def asset_key(ref: TableRef) -> AssetKey:
    return AssetKey([ref.format, ref.schema, ref.name])


def route_metadata(route: Route) -> Metadata:
    return {
        "route": route.name,
        "route_definition": MetadataValue.json(
            route.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        ),
    }


def _pattern(route: Route) -> re.Pattern[str]:
    parts = [re.escape(p) for p in route.table.split("{dataset}")]
    return re.compile("^" + "[a-z0-9_]+".join(parts) + "$")


def existing_tables(
    settings: Settings,
    store: ObjectStore,
    formats: Collection[str] = ("delta", "iceberg"),
) -> list[TableRef]:
    """Delta tables under the lake bucket and Iceberg tables in the catalog, as they are now.

    Only the formats asked for are listed: every run worker loads the code location, and the
    Iceberg catalog alone costs seconds of imports there.
    """
    refs: list[TableRef] = []
    if "delta" in formats and store.bucket_exists(settings.lake_bucket):
        for schema_dir in store.list_page(settings.lake_bucket, "", "/").folders:
            if schema_dir in ("iceberg/", settings.quarantine_prefix):
                continue
            for table_dir in store.list_page(settings.lake_bucket, schema_dir, "/").folders:
                log = store.list_page(settings.lake_bucket, f"{table_dir}_delta_log/", "/", limit=1)
                if log.objects:
                    refs.append(TableRef("delta", schema_dir[:-1], table_dir[len(schema_dir) : -1]))
    if "iceberg" not in formats:
        return refs
    try:
        from lakehouse.iceberg import catalog

        cat = catalog(settings, store)
        for ns in cat.list_namespaces():
            for ident in cat.list_tables(ns):
                refs.append(TableRef("iceberg", ident[0], ident[-1]))
    except Exception:  # no catalog yet: no Iceberg tables to declare
        pass
    return refs


def table_routes(routes: list[Route], existing: list[TableRef]) -> dict[TableRef, Route]:
    """Each declared table and the route that feeds it (first route wins, as for objects)."""
    out: dict[TableRef, Route] = {}
    for route in routes:
        fixed = route.static_table()
        if fixed is not None:
            out.setdefault(fixed, route)
            continue
        pattern = _pattern(route)
        for ref in existing:
            if ref.format == route.format and pattern.match(f"{ref.schema}.{ref.name}"):
                out.setdefault(ref, route)
    return out


def table_assets(tables: dict[TableRef, Route]) -> list[AssetSpec]:
    return [
        AssetSpec(
            key=asset_key(ref),
            description=f"{ref.format} table {ref.schema}.{ref.name}, fed by route "
            f"'{route.name}' ({route.bucket}/{route.glob})",
            metadata=route_metadata(route),
            group_name="tables",
            kinds={ref.format},
        )
        for ref, route in sorted(tables.items(), key=lambda kv: kv[0].qualified)
    ]


def quarantine_evaluation(
    ref: TableRef, records: list[QuarantineRecord]
) -> tuple[bool, Metadata, str]:
    """Passed?, metadata and description of the quarantine check for one table."""
    mine = [r for r in records if r.table == ref.qualified]
    metadata: Metadata = {
        "quarantined": len(mine),
        "objects": MetadataValue.json(
            [{"object": r.uri, "kind": r.kind, "reason": r.reason} for r in mine[:100]]
        ),
    }
    if not mine:
        return True, metadata, "no quarantined objects"
    first = mine[0]
    desc = f"{len(mine)} quarantined object(s); e.g. {first.uri}: {first.kind}: {first.reason}"
    return False, metadata, desc


def check_evaluation(ref: TableRef, records: list[QuarantineRecord]) -> AssetCheckEvaluation:
    passed, metadata, desc = quarantine_evaluation(ref, records)
    return AssetCheckEvaluation(
        asset_key=asset_key(ref),
        check_name=CHECK_NAME,
        passed=passed,
        metadata=metadata,
        severity=AssetCheckSeverity.ERROR,
        description=desc,
    )


def quarantined_for(
    settings: Settings, store: ObjectStore, buckets: set[str]
) -> list[QuarantineRecord]:
    out: list[QuarantineRecord] = []
    for bucket in sorted(buckets):
        if store.bucket_exists(bucket):
            out.extend(list_quarantined(settings, store, bucket))
    return out


def trino_evaluation(ref: TableRef, error: str | None) -> AssetCheckEvaluation:
    """After a commit: can Trino see the table (registered on the platform's Delta catalog)?"""
    return AssetCheckEvaluation(
        asset_key=asset_key(ref),
        check_name=TRINO_CHECK_NAME,
        passed=error is None,
        description=error or f"registered in Trino as {ref.qualified}",
    )


def build_trino_checks(tables: dict[TableRef, Route]) -> list[AssetChecksDefinition]:
    """Where Trino is configured, every Delta table has a check that Trino can see it; the
    ingestion runs report it after each commit, and running it registers the table again."""
    delta = [ref for ref in tables if ref.format == "delta"]
    if not delta or not Settings().trino_url:
        return []
    specs = [
        AssetCheckSpec(
            TRINO_CHECK_NAME,
            asset=asset_key(ref),
            description="Fails while Trino cannot see the table (registration failed).",
        )
        for ref in delta
    ]

    @multi_asset_check(specs=specs, name="trino_checks", can_subset=True)
    def trino_checks(
        context: AssetCheckExecutionContext, lakewire: LakewireResource
    ) -> Iterator[AssetCheckResult]:
        selected = {k.asset_key for k in context.selected_asset_check_keys}
        for ref in delta:
            if asset_key(ref) not in selected:
                continue
            error = None
            try:
                register_delta_table(lakewire.settings(), ref)
            except TrinoError as exc:
                error = str(exc)
            yield AssetCheckResult(
                asset_key=asset_key(ref),
                check_name=TRINO_CHECK_NAME,
                passed=error is None,
                description=error or f"registered in Trino as {ref.qualified}",
            )

    return [trino_checks]


def build_quarantine_checks(tables: dict[TableRef, Route]) -> list[AssetChecksDefinition]:
    """An executable check per table (the ingestion runs also report it after every batch)."""
    if not tables:
        return []
    specs = [
        AssetCheckSpec(
            CHECK_NAME,
            asset=asset_key(ref),
            description="Fails while objects routed to this table sit in quarantine.",
        )
        for ref in tables
    ]
    buckets = {route.bucket for route in tables.values()}

    @multi_asset_check(specs=specs, name="quarantine_checks", can_subset=True)
    def quarantine_checks(
        context: AssetCheckExecutionContext, lakewire: LakewireResource
    ) -> Iterator[AssetCheckResult]:
        settings = lakewire.settings()
        records = quarantined_for(settings, lakewire.object_store(), buckets)
        for ref in tables:
            key = asset_key(ref)
            if key not in {k.asset_key for k in context.selected_asset_check_keys}:
                continue
            passed, metadata, desc = quarantine_evaluation(ref, records)
            yield AssetCheckResult(
                asset_key=key,
                check_name=CHECK_NAME,
                passed=passed,
                metadata=metadata,
                description=desc,
            )

    return [quarantine_checks]
