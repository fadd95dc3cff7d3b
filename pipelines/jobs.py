"""Jobs: ingestion of one micro-batch into one table, and the reconciliation sweep.

No ``from __future__ import annotations`` here: Dagster reads config and resource types from
real annotations.
"""

from datetime import UTC, datetime
from typing import Literal

from dagster import (
    AssetMaterialization,
    Backoff,
    Config,
    Failure,
    MetadataValue,
    OpExecutionContext,
    RetryPolicy,
    TableColumn,
    TableSchema,
    in_process_executor,
    job,
    op,
)

from lakehouse.objectstore import ObjectStore
from lakehouse.routes import Route, RoutesError, route_named, settings_routes
from lakehouse.settings import Settings
from lakehouse.tables import SourceVersion, TableRef, open_target
from lakehouse.trino import TrinoError, register_delta_table
from pipelines.assets import (
    Metadata,
    asset_key,
    check_evaluation,
    quarantined_for,
    route_metadata,
    trino_evaluation,
)
from pipelines.batches import (
    DRAINED_STREAM_TAG,
    DRAINED_TAG,
    DRAINING_TAG,
    Item,
    commits,
    stream_backlog,
)
from pipelines.ingestion import IngestReport, ingest_batch, remove_sources
from pipelines.reconcile import reconcile
from pipelines.resources import LakewireResource
from storage_service.events import OBJECT_CREATED_PUT, OBJECT_REMOVED_DELETE, BucketEvent


class SourceObject(Config):
    bucket: str
    key: str
    etag: str
    sequencer: str
    size: int = 0
    action: Literal["create", "remove"] = "create"


class IngestConfig(Config):
    route: str
    table: str
    # Named objects (replays, tests) and/or the stream from this sequence up to its tail when
    # the run starts (what the sensor asks for, so a run takes its table's whole backlog).
    objects: list[SourceObject] = []
    drain_from_seq: int = 0
    # Re-route (`lakewire replay --route ... --remove-from TABLE`): once the objects are in this
    # run's table, their rows leave the table they wrongly landed in.
    remove_from: str = ""


def _table_schema(report: IngestReport) -> TableSchema | None:
    if report.schema is None:
        return None
    return TableSchema(columns=[TableColumn(c, str(t)) for c, t in report.schema.items()])


@op(
    description="Ingest a micro-batch of landing objects into its table in one commit.",
    # Transient store or catalog errors: the ledger makes a retry of a half-done batch safe.
    retry_policy=RetryPolicy(max_retries=3, delay=2, backoff=Backoff.EXPONENTIAL),
)
def ingest_objects(
    context: OpExecutionContext, config: IngestConfig, lakewire: LakewireResource
) -> None:
    settings = lakewire.settings()
    store = lakewire.object_store()
    try:
        routes = settings_routes(settings)
        route = route_named(routes, config.route)
    except RoutesError as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc
    ref = TableRef.parse(config.table)
    named: list[Item] = [(o.action, _as_event(o)) for o in config.objects]
    items = named
    backlog = None
    if config.drain_from_seq:
        backlog = stream_backlog(settings, routes, route.name, ref.qualified, config.drain_from_seq)
        context.log.info(
            f"stream {backlog.first_seq}..{backlog.last_seq}: {len(backlog.items)} objects "
            f"pending for {ref.qualified}"
        )
        items = _merge(named, backlog.items)
        # Launch paths request no run for what this one is about to take (pipelines/requests.py).
        context.instance.add_run_tags(
            context.run_id,
            {DRAINING_TAG: str(backlog.last_seq), DRAINED_STREAM_TAG: backlog.stream_created},
        )
    for part in commits(settings, items) or [[]]:
        _ingest_commit(context, settings, store, route, ref, part)
    if config.remove_from:
        _move_out(context, settings, store, ref, TableRef.parse(config.remove_from), items)
    if config.drain_from_seq:
        # The sensor asks for no run for what this one drained, even ahead of its cursor.
        assert backlog is not None
        context.instance.add_run_tags(
            context.run_id,
            {DRAINED_TAG: str(backlog.last_seq), DRAINED_STREAM_TAG: backlog.stream_created},
        )
    records = quarantined_for(settings, store, {route.bucket})
    # Dagster's type of log_event's argument leaves out AssetCheckEvaluation, which it logs.
    context.log_event(check_evaluation(ref, records))  # type: ignore[arg-type]


def _as_event(o: SourceObject) -> BucketEvent:
    name = OBJECT_CREATED_PUT if o.action == "create" else OBJECT_REMOVED_DELETE
    return BucketEvent(name, o.bucket, o.key, o.size, o.etag, o.sequencer, datetime.now(tz=UTC))


def _merge(named: list[Item], drained: list[Item]) -> list[Item]:
    """Named objects plus the drained backlog, one entry per key (the backlog's is newer)."""
    out = {(e.bucket, e.key): (action, e) for action, e in named}
    out.update({(e.bucket, e.key): (action, e) for action, e in drained})
    return list(out.values())


def _ingest_commit(
    context: OpExecutionContext,
    settings: Settings,
    store: ObjectStore,
    route: Route,
    ref: TableRef,
    items: list[Item],
) -> None:
    """One table commit of a capped part of the run's objects, with its materialization."""
    created = [_source(e) for action, e in items if action == "create"]
    removed = [_source(e) for action, e in items if action == "remove"]
    report = ingest_batch(
        settings, store, ref, created, context.run_id, route=route, removed=removed
    )
    context.log.info(
        f"{ref.qualified}: {report.rows} rows from {len(report.ingested)} objects; "
        f"{len(report.skipped)} already ingested, {len(report.superseded)} superseded, "
        f"{len(report.quarantined)} quarantined, {len(report.removed)} removed"
    )
    for uri, rec in report.quarantined.items():
        context.log.warning(f"quarantined {uri}: {rec.kind}: {rec.reason}")
    if report.ingested or report.removed:
        target_rows = None
        try:
            target_rows = open_target(settings, store, ref).row_count()
        except Exception as exc:  # metadata only; the commit is done
            context.log.warning(f"could not count rows of {ref.qualified}: {exc}")
        metadata: Metadata = {
            **route_metadata(route),
            "rows_added": report.rows,
            "row_count": target_rows,
            "table_version": report.table_version,
            "objects_ingested": len(report.ingested),
            "last_source_objects": MetadataValue.json(report.ingested[-50:]),
        }
        if report.removed:
            metadata["objects_removed"] = MetadataValue.json(report.removed[-50:])
        if report.schema_changes:  # the table's schema history, one materialization a change
            metadata["schema_changes"] = MetadataValue.json(report.schema_changes)
        schema_md = _table_schema(report)
        if schema_md is not None:
            metadata["dagster/column_schema"] = schema_md
        context.log_event(
            AssetMaterialization(
                asset_key=asset_key(ref),
                description=f"route {route.name}",
                metadata={k: v for k, v in metadata.items() if v is not None},
            )
        )
        _show_in_trino(context, settings, ref, schema_changed=bool(report.schema_changes))


def _show_in_trino(
    context: OpExecutionContext, settings: Settings, ref: TableRef, *, schema_changed: bool
) -> None:
    """On the platform, Trino sees a Delta table from its first commit; a failure fails the
    table's ``visible_in_trino`` check, never the ingestion (the rows are committed)."""
    try:
        registered = register_delta_table(settings, ref, schema_changed=schema_changed)
    except TrinoError as exc:
        context.log.warning(str(exc))
        context.log_event(trino_evaluation(ref, str(exc)))  # type: ignore[arg-type]
        return
    if registered is not None:
        context.log_event(trino_evaluation(ref, None))  # type: ignore[arg-type]


def _move_out(
    context: OpExecutionContext,
    settings: Settings,
    store: ObjectStore,
    ref: TableRef,
    wrong: TableRef,
    items: list[Item],
) -> None:
    """Delete from ``wrong`` the rows of exactly the objects ``ref``'s ledger now holds, so an
    object's rows are never in neither table (a quarantined one stays where it was)."""
    sources = [_source(e) for action, e in items if action == "create"]
    landed = open_target(settings, store, ref).ledger(s.app_id for s in sources)
    moved = [s for s in sources if landed.get(s.app_id) is not None]
    removed = remove_sources(settings, store, wrong, moved)
    context.log.info(
        f"re-route: {len(removed)} objects' rows removed from {wrong.qualified} "
        f"({len(moved) - len(removed)} were removed before)"
    )
    if removed:
        context.log_event(
            AssetMaterialization(
                asset_key=asset_key(wrong),
                description=f"rows re-routed to {ref.qualified}",
                metadata={
                    "objects_moved_to": ref.qualified,
                    "objects_removed": MetadataValue.json(removed[-50:]),
                },
            )
        )


def _source(e: BucketEvent) -> SourceVersion:
    return SourceVersion(e.bucket, e.key, e.etag, e.sequencer)


@job(
    executor_def=in_process_executor,
    description="Ingest landing objects into a table.",
)
def ingest_job() -> None:
    ingest_objects()


class ReconcileConfig(Config):
    grace_seconds: float | None = None


@op(description="Re-emit events for landing objects the ledger has never seen.")
def reconcile_landing(
    context: OpExecutionContext, config: ReconcileConfig, lakewire: LakewireResource
) -> None:
    settings = lakewire.settings()
    result = reconcile(settings, lakewire.object_store(), grace_seconds=config.grace_seconds)
    context.log.info(
        f"listed {result.listed} objects; {len(result.missing)} with no ledger entry "
        f"re-emitted; {result.quarantined} quarantined left alone"
    )
    for ev in result.missing[:100]:
        context.log.info(f"re-emitted {ev.bucket}/{ev.key} (etag {ev.etag})")


@job(executor_def=in_process_executor, description="Reconciliation sweep of landing prefixes.")
def reconcile_job() -> None:
    reconcile_landing()
