"""Jobs: ingestion of one micro-batch into one table.

No ``from __future__ import annotations`` here: Dagster reads config and resource types from
real annotations.
"""

from dagster import (
    AssetMaterialization,
    Config,
    Failure,
    MetadataValue,
    OpExecutionContext,
    in_process_executor,
    job,
    op,
)

from lakehouse.tables import SourceVersion, TableRef
from pipelines.ingestion import ingest_batch
from pipelines.resources import LakewireResource


class SourceObject(Config):
    bucket: str
    key: str
    etag: str
    sequencer: str
    size: int = 0


class IngestConfig(Config):
    route: str
    table: str
    objects: list[SourceObject]


@op(description="Ingest a micro-batch of landing objects into its table in one commit.")
def ingest_objects(
    context: OpExecutionContext, config: IngestConfig, lakewire: LakewireResource
) -> None:
    settings = lakewire.settings()
    store = lakewire.object_store()
    fmt, schema, name = config.table.split(".", 2)
    ref = TableRef(fmt, schema, name)
    sources = [SourceVersion(o.bucket, o.key, o.etag, o.sequencer) for o in config.objects]
    report = ingest_batch(settings, store, ref, sources, context.run_id)
    context.log.info(
        f"{ref.qualified}: {report.rows} rows from {len(report.ingested)} objects, "
        f"{len(report.skipped)} already ingested, {len(report.failed)} failed"
    )
    if report.ingested:
        context.log_event(
            AssetMaterialization(
                asset_key=[fmt, schema, name],
                description=f"route {config.route}",
                metadata={
                    "rows_added": report.rows,
                    "table_version": report.table_version,
                    "route": config.route,
                    "sources": MetadataValue.json(report.ingested[:50]),
                },
            )
        )
    if report.failed:
        raise Failure(
            description=f"{len(report.failed)} objects failed",
            metadata={"failed": MetadataValue.json(report.failed)},
        )


@job(executor_def=in_process_executor, description="Ingest landing objects into a table.")
def ingest_job() -> None:
    ingest_objects()
