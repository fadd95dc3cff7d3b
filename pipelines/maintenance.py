"""Table maintenance (the lifecycle of tables, issue 12): Delta optimize and vacuum, Iceberg
snapshot expiry, as functions (the CLI's ``lakewire maintain``) and a Dagster job + schedule.

- ``optimize``: Delta compaction (bin-packing small files; Z-order when columns are given). It
  rewrites data files in a new version; readers of older versions keep their files until vacuum.
- ``vacuum``: removes files no version newer than the retention needs. A retention below
  ``vacuum_min_retention_hours`` (7 days by default) is refused unless forced, so a query that
  started on an older version, or time travel within the retention, never loses its files.
- ``expire_snapshots``: Iceberg snapshots older than the retention (the newest is always kept).
  Each snapshot's ingestion ledger (its summary) is carried into the table property first, so
  an expired snapshot never lets a source be ingested twice.
- ``remove_orphan_files``: files under an Iceberg table's location that nothing references
  (snapshots, manifests, metadata), older than the same retention.

Each run records files and bytes before and after as metadata of ``maintenance/<table>``.

No ``from __future__ import annotations`` here: Dagster reads config types from annotations.
"""

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import (
    AssetMaterialization,
    DefaultScheduleStatus,
    MetadataValue,
    OpExecutionContext,
    ScheduleDefinition,
    job,
    op,
)
from dagster import Config as DagsterConfig

from lakehouse.objectstore import ObjectStore
from lakehouse.routes import Route
from lakehouse.settings import Settings
from lakehouse.tables import TableRef, delta_table_uri
from pipelines.resources import LakewireResource
from pipelines.run_logs import with_json_logs


class MaintenanceRefused(ValueError):
    """A maintenance request that would break time travel or running queries."""


@dataclass
class MaintenanceReport:
    table: str
    action: str
    files_before: int
    files_after: int
    bytes_before: int
    bytes_after: int
    detail: dict[str, Any]


def _retention(settings: Settings, retention_hours: int | None, force: bool, what: str) -> int:
    """The retention to use; below the minimum it is refused unless forced, since a query or
    time travel on an older version would lose its files."""
    least = settings.vacuum_min_retention_hours
    hours = least if retention_hours is None else retention_hours
    if hours < least and not force:
        raise MaintenanceRefused(
            f"{what} retention {hours} h is below the minimum {least} h: queries and time "
            "travel on older versions would lose their files (force to override)"
        )
    return hours


def _iceberg(settings: Settings, store: ObjectStore, ref: TableRef) -> Any:
    from lakehouse.iceberg import load_table

    table = load_table(settings, store, ref)
    if table is None:
        raise MaintenanceRefused(f"{ref.qualified} does not exist")
    return table


def _delta(settings: Settings, store: ObjectStore, ref: TableRef) -> Any:
    from deltalake import DeltaTable

    return DeltaTable(
        delta_table_uri(settings, store, ref), storage_options=store.storage_options() or None
    )


def _delta_files(dt: Any) -> tuple[int, int]:
    adds = dt.get_add_actions(flatten=True)
    sizes = adds.column("size_bytes").to_pylist() if adds.num_rows else []
    return len(sizes), int(sum(sizes))


def optimize(
    settings: Settings,
    store: ObjectStore,
    ref: TableRef,
    z_order: list[str] | None = None,
    target_size: int | None = None,
) -> MaintenanceReport:
    """Compact a Delta table's small files (one new version; data unchanged)."""
    if ref.format != "delta":
        raise MaintenanceRefused(f"{ref.qualified}: optimize is for Delta tables")
    dt = _delta(settings, store, ref)
    files, size = _delta_files(dt)
    if z_order:
        metrics = dt.optimize.z_order(z_order, target_size=target_size)
    else:
        metrics = dt.optimize.compact(target_size=target_size)
    dt = _delta(settings, store, ref)
    after, size_after = _delta_files(dt)
    return MaintenanceReport(ref.qualified, "optimize", files, after, size, size_after, metrics)


def vacuum(
    settings: Settings,
    store: ObjectStore,
    ref: TableRef,
    retention_hours: int | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> MaintenanceReport:
    """Remove data files no version within the retention needs."""
    if ref.format != "delta":
        raise MaintenanceRefused(f"{ref.qualified}: vacuum is for Delta tables")
    hours = _retention(settings, retention_hours, force, "vacuum")
    dt = _delta(settings, store, ref)
    files, size = _delta_files(dt)
    removed = dt.vacuum(retention_hours=hours, dry_run=dry_run, enforce_retention_duration=False)
    return MaintenanceReport(
        ref.qualified,
        "vacuum",
        files,
        files,
        size,
        size,
        {"removed_files": len(removed), "retention_hours": hours, "dry_run": dry_run},
    )


def compact_iceberg(settings: Settings, store: ObjectStore, ref: TableRef) -> MaintenanceReport:
    """Rewrite an Iceberg table's small data files as few, in one new snapshot.

    pyiceberg has no rewrite-data-files action, so the current snapshot's rows are read and
    overwritten in one transaction based on that same snapshot: a commit that lands in between
    makes this one fail (optimistic concurrency) rather than lose rows. Older snapshots keep
    their files (and their ledger entries) until expiry, so queries and time travel running
    meanwhile are unaffected. Tables larger than ``iceberg_compact_max_bytes`` are skipped.
    """
    table = _iceberg(settings, store, ref)
    files = table.inspect.data_files()
    before, size = files.num_rows, sum(files["file_size_in_bytes"].to_pylist())
    detail: dict[str, Any] = {"unit": "data files"}
    current = table.current_snapshot()
    if before <= 1 or current is None:
        detail["skipped"] = "nothing to compact"
    elif size > settings.iceberg_compact_max_bytes:
        detail["skipped"] = (
            f"{size} bytes of data files is over iceberg_compact_max_bytes "
            f"({settings.iceberg_compact_max_bytes})"
        )
    else:
        rows = table.scan(snapshot_id=current.snapshot_id).to_arrow()
        with table.transaction() as tx:
            tx.overwrite(rows, snapshot_properties={"lakewire.operation": "compact"})
        table = _iceberg(settings, store, ref)
    after_files = table.inspect.data_files()
    return MaintenanceReport(
        ref.qualified,
        "compact",
        before,
        after_files.num_rows,
        size,
        sum(after_files["file_size_in_bytes"].to_pylist()),
        detail,
    )


def expire_snapshots(
    settings: Settings,
    store: ObjectStore,
    ref: TableRef,
    older_than: datetime | None = None,
    retention_hours: int | None = None,
    force: bool = False,
) -> MaintenanceReport:
    """Expire an Iceberg table's snapshots older than the retention (never the current one)."""
    from lakehouse.iceberg import LEDGER_PROPERTY, _summary_ledger, load_table

    if ref.format != "iceberg":
        raise MaintenanceRefused(f"{ref.qualified}: snapshot expiry is for Iceberg tables")
    hours = _retention(settings, retention_hours, force, "snapshot")
    table = _iceberg(settings, store, ref)
    cutoff = older_than or datetime.now(UTC) - timedelta(hours=hours)
    cutoff_ms = int(cutoff.timestamp() * 1000)
    current = table.current_snapshot()
    doomed = [
        s
        for s in table.snapshots()
        if s.timestamp_ms < cutoff_ms and (current is None or s.snapshot_id != current.snapshot_id)
    ]
    before = len(table.snapshots())
    if doomed:
        # carry the ledger of every snapshot about to go into the table property first
        ledger: dict[str, int] = json.loads(table.properties.get(LEDGER_PROPERTY, "{}"))
        for snap in doomed:
            for app_id, version in _summary_ledger(snap).items():
                ledger[app_id] = max(version, ledger.get(app_id, version))
        with table.transaction() as tx:
            tx.set_properties({LEDGER_PROPERTY: json.dumps(ledger)})
        table = load_table(settings, store, ref)
        assert table is not None
        table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in doomed]).commit()
        table = load_table(settings, store, ref)
        assert table is not None
    after = len(table.snapshots())
    return MaintenanceReport(
        ref.qualified,
        "expire_snapshots",
        before,
        after,
        0,
        0,
        {"expired_snapshots": len(doomed), "cutoff": cutoff.isoformat(), "unit": "snapshots"},
    )


def remove_orphan_files(
    settings: Settings,
    store: ObjectStore,
    ref: TableRef,
    retention_hours: int | None = None,
    force: bool = False,
) -> MaintenanceReport:
    """Delete files under an Iceberg table's location that no snapshot, manifest or metadata
    file references any more (a failed write's data files, what snapshot expiry let go of).

    Only files older than the retention go: a file written by a commit still in flight is not
    referenced yet either, and the same minimum retention as vacuum protects it.
    """

    if ref.format != "iceberg":
        raise MaintenanceRefused(f"{ref.qualified}: orphan-file removal is for Iceberg tables")
    hours = _retention(settings, retention_hours, force, "orphan")
    table = _iceberg(settings, store, ref)
    referenced = {str(p) for p in table.inspect.all_files()["file_path"].to_pylist()}
    referenced |= {str(p) for p in table.inspect.all_manifests()["path"].to_pylist()}
    referenced |= {s.manifest_list for s in table.snapshots() if s.manifest_list}
    referenced |= {table.metadata_location, *(e.metadata_file for e in table.metadata.metadata_log)}
    referenced |= {st.statistics_path for st in table.metadata.statistics}
    bucket = settings.lake_bucket
    base = store.url(bucket)
    location = table.location().rstrip("/")
    if not location.startswith(base + "/"):
        raise MaintenanceRefused(f"{ref.qualified} lives outside the lake bucket: {location}")
    prefix = location.removeprefix(base + "/") + "/"
    cutoff = datetime.now(UTC) - timedelta(hours=hours)
    files = kept_bytes = removed = removed_bytes = 0
    for info in list(store.iter_objects(bucket, prefix)):
        files += 1
        if store.url(bucket, info.key) in referenced or info.last_modified >= cutoff:
            kept_bytes += info.size
            continue
        store.delete(bucket, info.key)
        removed += 1
        removed_bytes += info.size
    return MaintenanceReport(
        ref.qualified,
        "remove_orphan_files",
        files,
        files - removed,
        kept_bytes + removed_bytes,
        kept_bytes,
        {"removed_files": removed, "cutoff": cutoff.isoformat(), "unit": "files"},
    )


def maintain(
    settings: Settings,
    store: ObjectStore,
    ref: TableRef,
    force: bool = False,
    retention_hours: int | None = None,
    z_order: list[str] | None = None,
) -> list[MaintenanceReport]:
    """The default maintenance of a table: Delta optimize (Z-ordered by ``z_order`` when
    given) + vacuum; Iceberg compaction, snapshot expiry, then removal of the files nothing
    references."""
    if ref.format == "delta":
        return [
            optimize(settings, store, ref, z_order=z_order or None),
            vacuum(settings, store, ref, retention_hours, force=force),
        ]
    return [
        compact_iceberg(settings, store, ref),
        expire_snapshots(settings, store, ref, retention_hours=retention_hours, force=force),
        remove_orphan_files(settings, store, ref, retention_hours, force=force),
    ]


class MaintenanceConfig(DagsterConfig):
    table: str  # format.schema.name, e.g. delta.default.orders
    retention_hours: int | None = None
    force: bool = False
    z_order: list[str] = []


@op(
    description="Compact and vacuum a Delta table, or expire an Iceberg table's snapshots and "
    "remove the files nothing references any more."
)
def maintain_table(
    context: OpExecutionContext, config: MaintenanceConfig, lakewire: LakewireResource
) -> None:
    settings = lakewire.settings()
    store = lakewire.object_store()
    ref = TableRef.parse(config.table)
    reports = maintain(
        settings, store, ref, config.force, config.retention_hours, config.z_order or None
    )
    for r in reports:
        context.log.info(f"{r.table} {r.action}: files {r.files_before} -> {r.files_after}")
    first, last = reports[0], reports[-1]
    context.log_event(
        AssetMaterialization(
            asset_key=["maintenance", *ref.qualified.split(".")],
            metadata={
                "files_before": first.files_before,
                "files_after": last.files_after,
                "bytes_before": first.bytes_before,
                "bytes_after": last.bytes_after,
                "reports": MetadataValue.json([asdict(r) for r in reports]),
            },
        )
    )


@job(description="Table maintenance of one table (config: table, retention_hours, force).")
def maintenance_job() -> None:
    maintain_table()


def maintenance_run_config(ref: TableRef, route: Route | None) -> dict[str, Any]:
    """The op config of a table's maintenance: its route's time-travel retention and Z-order
    columns (``maintenance`` in the route), so every scheduled run keeps what the table owner
    declared."""
    config: dict[str, Any] = {"table": ref.qualified}
    if route is not None:
        if route.maintenance.retention_hours is not None:
            config["retention_hours"] = route.maintenance.retention_hours
        if route.maintenance.z_order and ref.format == "delta":
            config["z_order"] = list(route.maintenance.z_order)
    return {"ops": {"maintain_table": {"config": config}}}


def maintenance_schedules(
    settings: Settings, tables: Mapping[TableRef, Route | None]
) -> list[ScheduleDefinition]:
    """One schedule per table (weekly by default, ``maintenance_schedule``), configured from
    the table's route."""
    return [
        ScheduleDefinition(
            name="maintain_" + "_".join(ref.qualified.split(".")),
            job=maintenance_job,
            cron_schedule=settings.maintenance_schedule,
            run_config=with_json_logs(maintenance_run_config(ref, route)),
            default_status=DefaultScheduleStatus.RUNNING,
            description=f"Weekly maintenance of {ref.qualified}.",
        )
        for ref, route in tables.items()
    ]
