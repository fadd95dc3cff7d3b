"""Turn a micro-batch of landing objects into one table commit, exactly once.

``ingest_batch`` is the whole ingestion of one batch, callable in-process (the Dagster op and
the benchmarks both call it): it skips what the table's ledger already holds, quarantines bad
objects with their reason, fits the rest to one schema (adding new nullable columns), and writes
rows plus ledger entries in a single commit. Small objects are parsed up front so a bad one is
caught before anything is written; large ones are streamed in batches into the same commit, and
if one turns out to be bad halfway, the commit never happens, the object is quarantined and the
batch is written again without it.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa

from lakehouse.formats import (
    BadObject,
    ObjectReader,
    ReadResult,
    column_name,
    fit,
    schema_changes,
    target_schema,
)
from lakehouse.objectstore import ObjectNotFound, ObjectStore
from lakehouse.quarantine import QuarantineRecord, quarantine_object
from lakehouse.routes import Route
from lakehouse.settings import Settings
from lakehouse.tables import (
    LINEAGE_COLUMNS,
    LINEAGE_SCHEMA,
    CommitConflict,
    SourceVersion,
    TableRef,
    TableTarget,
    arrow_schema,
    lineage_columns,
    lineage_frame,
    open_target,
    pending_sources,
    with_original_names,
)
from lakehouse.tiers import TierMap

LOAD_THREADS = 4
"""Objects of a batch read at once (small objects are mostly waiting on I/O and per-call setup)."""

Store = ObjectStore


@dataclass
class IngestReport:
    table: str
    route: str
    rows: int = 0
    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already in the ledger
    superseded: list[str] = field(default_factory=list)  # changed or gone since the event
    quarantined: dict[str, QuarantineRecord] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    table_version: int | None = None
    schema: pl.Schema | None = None
    schema_changes: list[str] = field(default_factory=list)  # what this commit added


@dataclass
class _Loaded:
    src: SourceVersion
    frame: pl.DataFrame | None = None  # small objects, parsed whole
    lazy: pl.LazyFrame | None = None  # large objects, streamed
    streamed_rows: int = 0
    columns: dict[str, str] = field(default_factory=dict)  # column -> its name in the object

    def schema(self) -> pl.Schema:
        if self.frame is not None:  # lineage is added when the batch is fitted (_parts)
            return pl.Schema({**self.frame.schema, **LINEAGE_SCHEMA})
        assert self.lazy is not None
        return self.lazy.collect_schema()


@dataclass
class _Part:
    """A piece of the batch as the write takes it: small objects fitted together into one
    frame with their lineage, or one large object (``frame`` None) streamed from its lazy."""

    items: list[_Loaded]
    frame: pl.DataFrame | None = None


class _Unfit(Exception):
    """An object of the batch with a value the batch schema cannot store."""

    def __init__(self, item: _Loaded, bad: BadObject) -> None:
        super().__init__(str(bad))
        self.item, self.bad = item, bad


def default_route(ref: TableRef) -> Route:
    """The route used when a caller names only a table: append, format from the extension."""
    return Route(
        name=f"direct:{ref.qualified}".replace(":", "_"),
        glob="*",
        format=ref.format,
        table=f"{ref.schema}.{ref.name}",
    )


# Rounds a batch may lose to concurrent writers on one table before its run fails (and
# Dagster's retry policy takes over).
COMMIT_ATTEMPTS = 20


def ingest_batch(
    settings: Settings,
    store: Store,
    ref: TableRef,
    sources: list[SourceVersion],
    run_id: str,
    *,
    route: Route | None = None,
    removed: list[SourceVersion] | None = None,
) -> IngestReport:
    """Ingest ``sources`` into ``ref`` in one commit; ``removed`` objects lose their rows first
    when the route's ``on_delete`` policy is ``delete_rows``.

    Safe to call any number of times with the same arguments: sources already in the table's
    ledger are skipped, so a re-run, a duplicate event or a replayed stream adds no rows. So is
    calling it from several processes at once: a commit that lost the race to another writer
    (``CommitConflict``) is redone from the ledger, which by then may hold some of its objects.
    """
    route = route or default_route(ref)
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            return _ingest_once(settings, store, ref, sources, run_id, route, removed)
        except CommitConflict:
            if attempt == COMMIT_ATTEMPTS - 1:
                raise
            # Jittered so the writers that lost this round do not collide again in lockstep.
            time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
    raise AssertionError("unreachable")


def _ingest_once(
    settings: Settings,
    store: Store,
    ref: TableRef,
    sources: list[SourceVersion],
    run_id: str,
    route: Route,
    removed: list[SourceVersion] | None,
) -> IngestReport:
    target = open_target(settings, store, ref)
    reader = _reader(settings, route, target)
    report = IngestReport(table=ref.qualified, route=route.name)
    if removed and route.on_delete == "delete_rows":
        _delete_removed(target, removed, report)

    sources = list(dict.fromkeys(sources))  # the same version twice in a batch is one object
    todo = pending_sources(target, sources)
    pending = set(todo)
    report.skipped = [s.uri for s in sources if s not in pending]
    with tempfile.TemporaryDirectory(prefix="lakewire-ingest-") as tmp:

        def load(src: SourceVersion) -> _Loaded | BadObject | None:
            try:
                return _load(settings, store, route, reader, src, Path(tmp))
            except BadObject as bad:
                return bad

        # Many small objects: their reads overlap (store I/O and polars' parsing release the
        # GIL); results are taken in order, so quarantine and the commit are as if sequential.
        loaded: list[_Loaded] = []
        with ThreadPoolExecutor(max_workers=LOAD_THREADS) as pool:
            for src, item in zip(todo, pool.map(load, todo), strict=True):
                if isinstance(item, BadObject):
                    _quarantine(settings, store, route, ref, run_id, src, item, report)
                elif item is None:
                    report.superseded.append(src.uri)
                else:
                    loaded.append(item)
        _commit(settings, store, route, ref, target, run_id, loaded, report)
    return report


def remove_sources(
    settings: Settings, store: Store, ref: TableRef, removed: list[SourceVersion]
) -> list[str]:
    """Delete the rows these object versions put in ``ref`` (by lineage), once: a removal the
    table's ledger already holds for that version or a newer one is not repeated."""
    report = IngestReport(table=ref.qualified, route="-")
    _delete_removed(open_target(settings, store, ref), removed, report)
    return report.removed


def _delete_removed(
    target: TableTarget, removed: list[SourceVersion], report: IngestReport
) -> None:
    seen = target.ledger(s.removal_id for s in removed)
    todo = [s for s in removed if (seen.get(s.removal_id) or -1) < s.version]
    if todo:
        target.delete_sources(todo)
    report.removed = [s.uri for s in todo]


def _reader(settings: Settings, route: Route, target: TableTarget) -> ObjectReader:
    """How this route's objects are read for this table: an existing table keeps the column
    naming it was created with (DECISIONS, column names); a new one takes the route's."""
    options = route.read
    naming = target.column_naming()
    return ObjectReader(
        file_format=route.file_format,
        csv=route.csv,
        options=options,
        dtypes=route.dtypes,
        normalize=options.normalize_columns if naming is None else naming == "snake_case",
        inflate_limit=settings.ingest_stream_threshold_bytes,
        renamed_columns=route.evolution.renamed_columns,
    )


def _loaded(src: SourceVersion, result: ReadResult) -> _Loaded:
    return _Loaded(src, frame=result.frame, lazy=result.lazy, columns=result.columns)


def _load(
    settings: Settings,
    store: Store,
    route: Route,
    reader: ObjectReader,
    src: SourceVersion,
    tmp: Path,
) -> _Loaded | None:
    """Parse (small) or open for streaming (large); ``None`` when the event's version is gone."""
    bucket, key = src.bucket, src.key
    try:
        info = store.head(bucket, key)
    except ObjectNotFound:
        where = TierMap(store).resolve(bucket, key)  # moved to a tier by lifecycle (issue 12)
        if where is None:
            return None
        bucket, key = where[0], where[1]
        try:
            info = store.head(bucket, key)
        except ObjectNotFound:
            return None
    # The store's etag is the content MD5 on both backends (stamped locally: no re-hash).
    if info.etag and src.etag and info.etag != src.etag:
        return None  # overwritten since the event; the newer version has its own event
    limit = route.max_object_bytes or settings.ingest_max_object_bytes
    if info.size > limit:
        raise BadObject("too_large", f"{info.size} bytes is over the limit of {limit} bytes")
    reader.detect(src.key)  # an unknown format is quarantined before any byte is read
    if info.size == 0:
        raise BadObject("empty", "the object has no content")
    if info.size >= settings.ingest_stream_threshold_bytes:
        local = store.local_file(bucket, key)
        if local is not None:
            path = local  # polars reads the file itself; the etag was checked just above
        else:
            path = tmp / hashlib.sha256(src.uri.encode()).hexdigest()
            with path.open("wb") as fh:
                for chunk in store.get_stream(bucket, key):
                    fh.write(chunk)
        return _loaded(src, reader.scan(src.key, path, tmp))
    try:
        # Bytes and etag of one version: an overwrite since the head above is caught here.
        info, data = store.get(bucket, key)
    except ObjectNotFound:
        return None
    if src.etag and info.etag and info.etag != src.etag:
        return None
    return _loaded(src, reader.read(src.key, data, tmp))


def _quarantine(
    settings: Settings,
    store: Store,
    route: Route,
    ref: TableRef,
    run_id: str,
    src: SourceVersion,
    bad: BadObject,
    report: IngestReport,
) -> None:
    report.quarantined[src.uri] = quarantine_object(
        settings,
        store,
        src,
        kind=bad.kind,
        reason=bad.reason,
        table=ref.qualified,
        route=route.name,
        run_id=run_id,
    )


def _commit(
    settings: Settings,
    store: Store,
    route: Route,
    ref: TableRef,
    target: TableTarget,
    run_id: str,
    loaded: list[_Loaded],
    report: IngestReport,
) -> None:
    now = datetime.now(tz=UTC)
    for item in loaded:
        if item.lazy is not None:
            item.lazy = item.lazy.with_columns(lineage_columns(item.src, run_id, now))
    table_schema = target.schema()
    while loaded:
        schema, conflicts = target_schema(
            table_schema, {i.src.app_id: i.schema() for i in loaded}, route.evolution.add_columns
        )
        bad = [i for i in loaded if i.src.app_id in conflicts]
        for i in bad:
            _quarantine(settings, store, route, ref, run_id, i.src, conflicts[i.src.app_id], report)
        loaded = [i for i in loaded if i.src.app_id not in conflicts]
        if bad:
            continue  # the schema may differ without them
        try:
            parts = _parts(loaded, schema, run_id, now)
        except _Unfit as unfit:
            _quarantine(settings, store, route, ref, run_id, unfit.item.src, unfit.bad, report)
            loaded.remove(unfit.item)
            continue
        failed: list[_Loaded] = []
        try:
            report.table_version = _write(
                route, target, loaded, parts, schema, failed, settings, run_id
            )
        except Exception as exc:
            if not failed:
                raise
            item = failed[0]
            reason = BadObject("unparseable", f"failed while streaming: {str(exc)[:500]}")
            _quarantine(settings, store, route, ref, run_id, item.src, reason, report)
            loaded.remove(item)
            continue
        report.ingested = [i.src.uri for i in loaded]
        report.rows = sum(_height(i) for i in loaded)
        report.schema = schema
        report.schema_changes = schema_changes(table_schema, schema) + _renamed(route, loaded)
        return


def _renamed(route: Route, loaded: list[_Loaded]) -> list[str]:
    """The route's declared renames this batch applied (an object still using the old name)."""
    declared = route.evolution.renamed_columns
    seen = {
        (header, table)
        for item in loaded
        for table, header in item.columns.items()
        if declared.get(header, declared.get(column_name(header))) == table and header != table
    }
    return [f"renamed column {old} -> {new}" for old, new in sorted(seen)]


def _parts(loaded: list[_Loaded], schema: pl.Schema, run_id: str, now: datetime) -> list[_Part]:
    """The batch in order, as the write takes it: each run of small objects read with one
    shape is fitted to the batch schema as one frame (a burst of one-row files costs one cast,
    not one per file); a large object stays lazy, to be streamed."""
    data = pl.Schema({c: t for c, t in schema.items() if c not in LINEAGE_SCHEMA})
    parts: list[_Part] = []
    run: list[_Loaded] = []
    shape: pl.Schema | None = None

    def close_run() -> None:
        if run:
            parts.append(_Part(list(run), _fit_run(run, data, schema, run_id, now)))
            run.clear()

    for item in loaded:
        if item.frame is None:
            close_run()
            parts.append(_Part([item]))
            continue
        if run and item.frame.schema != shape:
            close_run()
        shape = item.frame.schema
        run.append(item)
    close_run()
    return parts


def _fit_run(
    run: list[_Loaded], data: pl.Schema, schema: pl.Schema, run_id: str, now: datetime
) -> pl.DataFrame:
    """Objects of one shape fitted together: a cast is value by value, so the whole fits
    exactly when each object does, and only a failure needs the objects one by one (to
    quarantine the one at fault, with its own row number)."""
    frames = [i.frame for i in run if i.frame is not None]
    if any(c in LINEAGE_SCHEMA for c in frames[0].columns):  # a file's own columns of that name
        frames = [f.drop(LINEAGE_COLUMNS, strict=False) for f in frames]
    try:
        fitted = fit(pl.concat(frames, how="vertical"), data)
    except BadObject:
        for item, frame in zip(run, frames, strict=True):
            try:
                fit(frame, data)
            except BadObject as bad:
                raise _Unfit(item, bad) from bad
        fitted = pl.concat([fit(frame, data) for frame in frames], how="vertical")
    lineage = lineage_frame([i.src for i in run], [f.height for f in frames], run_id, now)
    return pl.concat([fitted, lineage], how="horizontal").select(schema.names())


def _height(item: _Loaded) -> int:
    return item.frame.height if item.frame is not None else item.streamed_rows


def _write(
    route: Route,
    target: TableTarget,
    loaded: list[_Loaded],
    parts: list[_Part],
    schema: pl.Schema,
    failed: list[_Loaded],
    settings: Settings,
    run_id: str,
) -> int | None:
    spec = route.write_spec
    arrow = with_original_names(arrow_schema(schema), (i.columns for i in loaded))
    partitions = _partitions(route, parts) if spec.mode == "overwrite" else []
    if spec.mode == "merge":
        frames = [
            p.frame if p.frame is not None else _collect(p.items[0], schema, failed) for p in parts
        ]
        merged = pl.concat(frames, how="vertical").unique(
            subset=list(spec.merge_keys), keep="last", maintain_order=True
        )
        reader = pa.RecordBatchReader.from_batches(arrow, merged.to_arrow().to_batches())
    else:
        reader = pa.RecordBatchReader.from_batches(
            arrow, _batches(parts, schema, arrow, failed, settings.ingest_stream_chunk_rows)
        )
    return target.write(reader, [i.src for i in loaded], spec, partitions, run_id)


def _collect(item: _Loaded, schema: pl.Schema, failed: list[_Loaded]) -> pl.DataFrame:
    """A large object read whole (merge needs every source row at once)."""
    assert item.lazy is not None
    try:
        frame = fit(item.lazy.collect(), schema)
    except Exception:
        failed.append(item)
        raise
    item.streamed_rows = frame.height
    return frame


def _batches(
    parts: list[_Part],
    schema: pl.Schema,
    arrow: pa.Schema,
    failed: list[_Loaded],
    chunk_rows: int,
) -> Iterator[pa.RecordBatch]:
    """Every row of the batch as Arrow record batches; large objects are read chunk by chunk.

    A failure while reading records which object caused it in ``failed`` before re-raising, so
    the caller can quarantine exactly that object (the write it interrupts never commits).
    """
    for part in parts:
        if part.frame is not None:
            yield from part.frame.to_arrow().cast(arrow).to_batches()
            continue
        item = part.items[0]
        rows = 0
        try:
            assert item.lazy is not None
            for chunk in item.lazy.collect_batches(chunk_size=chunk_rows):
                chunk = fit(chunk, schema)
                rows += chunk.height
                yield from chunk.to_arrow().cast(arrow).to_batches()
        except Exception:
            failed.append(item)
            raise
        item.streamed_rows = rows


def _partitions(route: Route, parts: list[_Part]) -> list[dict[str, object]]:
    """The partition values a batch holds: exactly what an overwrite replaces."""
    cols = list(route.partition_by)
    seen: list[dict[str, object]] = []
    for part in parts:
        if part.frame is not None:
            values = part.frame.select(cols).unique().to_dicts()
        else:
            lazy = part.items[0].lazy
            assert lazy is not None
            values = lazy.select(cols).unique().collect().to_dicts()
        seen.extend(v for v in values if v not in seen)
    return seen
