"""Turn a micro-batch of landing objects into one table commit."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

from lakehouse.delta import commit_batch, pending_sources
from lakehouse.objectstore import LocalObjectStore, ObjectNotFound, S3ObjectStore
from lakehouse.settings import Settings
from lakehouse.tables import SourceVersion, TableRef, delta_table_uri


@dataclass
class IngestReport:
    table: str
    rows: int = 0
    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    table_version: int | None = None


def read_object(store: LocalObjectStore | S3ObjectStore, src: SourceVersion) -> pl.DataFrame:
    data = store.get_bytes(src.bucket, src.key)
    return pl.read_csv(io.BytesIO(data))


def ingest_batch(
    settings: Settings,
    store: LocalObjectStore | S3ObjectStore,
    ref: TableRef,
    sources: list[SourceVersion],
    run_id: str,
) -> IngestReport:
    report = IngestReport(table=ref.qualified)
    uri = delta_table_uri(settings, store, ref)
    opts = store.storage_options()
    todo = pending_sources(uri, opts, sources)
    report.skipped = [s.uri for s in sources if s not in todo]
    frames: list[pl.DataFrame] = []
    committed: list[SourceVersion] = []
    now = datetime.now(tz=UTC)
    for src in todo:
        try:
            df = read_object(store, src)
        except ObjectNotFound as exc:
            report.failed[src.uri] = str(exc)
            continue
        except Exception as exc:
            report.failed[src.uri] = f"unreadable: {exc}"
            continue
        frames.append(
            df.with_columns(
                pl.lit(src.uri).alias("_source_uri"),
                pl.lit(src.etag).alias("_source_etag"),
                pl.lit(run_id).alias("_run_id"),
                pl.lit(now).alias("_ingested_at"),
            )
        )
        committed.append(src)
    if committed:
        data = pl.concat(frames, how="diagonal_relaxed")
        report.table_version = commit_batch(uri, opts, data.to_arrow(), committed)
        report.rows = data.height
        report.ingested = [s.uri for s in committed]
    return report
