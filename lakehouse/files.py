"""Read and write Object Storage from a notebook or script: ``read_csv("co2-data/x.csv")``.

Every path is ``"bucket/key"`` (an ``s3://`` in front is accepted). Frames are polars
DataFrames; a pandas DataFrame is accepted by the writers and returned by the readers with
``to_pandas=True`` when pandas is installed (it comes with the ``notebook`` extra; without it
``to_pandas=True`` raises an ``ImportError`` saying so).

All reads and writes go through the ``ObjectStore`` of the same settings as the platform, so a
write is announced like any other writer's (the local backend's watcher; MinIO's bucket
notifications on S3), and an object lifecycle moved to a tier is still found. Tables and SQL go
through the one query API, ``lakehouse.query``.

A missing bucket, key or table raises ``BucketNotFound``/``ObjectNotFound``/``TableNotFound``
whose message names the closest existing names.

Settings: the ``LAKEWIRE_*`` environment, as every service reads it. With no
``LAKEWIRE_DATA_DIR`` set, the data dir is the nearest ``.lakewire`` folder in the working
directory or one of its parents (where ``lakewire up`` keeps its state), so a notebook opened
in ``notebooks/`` finds the platform started in the project's root.
"""

from __future__ import annotations

import difflib
import importlib.util
import io
import itertools
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl
import pyarrow as pa

from lakehouse import sql as sql_engine
from lakehouse.objectstore import (
    BucketNotFound,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    open_object_store,
)
from lakehouse.settings import Settings
from lakehouse.tiers import SYSTEM_BUCKET, TierMap

__all__ = [
    "Lake",
    "Sql",
    "Tables",
    "default_settings",
    "exists",
    "ls",
    "open",
    "read_csv",
    "read_json",
    "read_parquet",
    "rm",
    "sql",
    "tables",
    "write_bytes",
    "write_csv",
    "write_json",
    "write_parquet",
]

SUGGESTIONS = 3
MAX_SCANNED_KEYS = 10_000  # keys looked at for "did you mean" in a large bucket
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TableNotFound(sql_engine.TableNotFound):
    """A table name that is not in the lake (the message names the closest ones)."""


_MISSING_TABLE_RE = re.compile(r"table ['\"]?([\w.\"]+?)['\"]? does not exist", re.IGNORECASE)


def default_settings() -> Settings:
    """The platform's settings; with no data dir set, the nearest ``.lakewire`` upwards."""
    if "LAKEWIRE_DATA_DIR" in os.environ:
        return Settings()
    settings = Settings()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / ".lakewire").is_dir():
            return settings.model_copy(update={"data_dir": folder / ".lakewire"})
    return settings


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=SUGGESTIONS, cutoff=0.5)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


def _is_pandas(frame: object) -> bool:
    return type(frame).__module__.split(".", 1)[0] == "pandas"


def _polars(frame: Any) -> pl.DataFrame:
    if isinstance(frame, pl.DataFrame):
        return frame
    if isinstance(frame, pl.LazyFrame):
        return frame.collect()
    if _is_pandas(frame):
        return pl.from_pandas(frame)
    if isinstance(frame, pa.Table):
        out = pl.from_arrow(frame)
        assert isinstance(out, pl.DataFrame)
        return out
    raise TypeError(f"expected a polars or pandas DataFrame, got {type(frame).__name__}")


def _result(frame: pl.DataFrame, to_pandas: bool) -> Any:
    if not to_pandas:
        return frame
    if importlib.util.find_spec("pandas") is None:
        raise ImportError(
            "to_pandas=True needs pandas, which is not installed in this environment "
            "(install it, e.g. `uv pip install pandas`, or use the polars DataFrame)"
        )
    return frame.to_pandas()


class _StreamReader(io.RawIOBase):
    """A raw, read-only file over an iterator of chunks (nothing is read ahead)."""

    def __init__(self, chunks: Iterator[bytes], info: ObjectInfo) -> None:
        self._chunks = chunks
        self._pending = b""
        self.info = info

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()


class Lake:
    """The helpers over one object store; ``lakehouse.notebook.minio`` is one of these."""

    def __init__(self, settings: Settings | None = None, store: ObjectStore | None = None) -> None:
        self._settings = settings
        self._store = store
        self.tables = Tables(self)
        self.sql = Sql(self)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = default_settings()
        return self._settings

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            self._store = open_object_store(self.settings)
        return self._store

    def __repr__(self) -> str:
        if self._store is None:
            return "<lakewire object storage (not opened yet)>"
        return f"<lakewire object storage: {self._store.kind} backend>"

    # -- names ------------------------------------------------------------------------------
    def _split(self, path: str, *, key_required: bool = True) -> tuple[str, str]:
        text = path.removeprefix("s3://").lstrip("/")
        bucket, _, key = text.partition("/")
        if not bucket or (key_required and not key):
            raise ValueError(f"expected 'bucket/key', got {path!r}")
        return bucket, key

    def _bucket_names(self) -> list[str]:
        return [b.name for b in self.store.list_buckets() if b.name != SYSTEM_BUCKET]

    def _require_bucket(self, bucket: str) -> None:
        if not self.store.bucket_exists(bucket):
            hint = _did_you_mean(bucket, self._bucket_names())
            raise BucketNotFound(f"bucket '{bucket}' does not exist{hint}")

    def _missing_key(self, bucket: str, key: str) -> ObjectNotFound:
        keys = [o.key for o in itertools.islice(self.store.iter_objects(bucket), MAX_SCANNED_KEYS)]
        hint = _did_you_mean(key, keys)
        if not hint and keys:  # a wrong folder: offer the same file name elsewhere
            by_leaf: dict[str, list[str]] = {}
            for k in keys:
                by_leaf.setdefault(k.rsplit("/", 1)[-1], []).append(k)
            close = difflib.get_close_matches(key.rsplit("/", 1)[-1], list(by_leaf), cutoff=0.5)
            found = [k for leaf in close for k in by_leaf[leaf]][:SUGGESTIONS]
            if found:
                hint = "; did you mean " + " or ".join(repr(k) for k in found) + "?"
        return ObjectNotFound(f"object '{bucket}/{key}' does not exist{hint}")

    def _locate(self, path: str) -> tuple[str, str, ObjectInfo]:
        """Where the object's bytes are now: its bucket, or the tier lifecycle moved it to."""
        bucket, key = self._split(path)
        self._require_bucket(bucket)
        try:
            return bucket, key, self.store.head(bucket, key)
        except ObjectNotFound:
            where = TierMap(self.store).resolve(bucket, key)
            if where is not None:
                try:
                    return where[0], where[1], self.store.head(where[0], where[1])
                except (ObjectNotFound, BucketNotFound):
                    pass
            raise self._missing_key(bucket, key) from None

    def _read(self, path: str) -> bytes:
        bucket, key, _ = self._locate(path)
        try:
            return self.store.get_bytes(bucket, key)
        except ObjectNotFound:  # removed since the head
            raise self._missing_key(*self._split(path)) from None

    def _write(self, path: str, fill: Callable[[BinaryIO], None]) -> ObjectInfo:
        """Serialise into a temporary file, then one put: readers never see half an object."""
        bucket, key = self._split(path)
        self._require_bucket(bucket)
        with tempfile.TemporaryDirectory(prefix="lakewire-") as tmp:
            staged = Path(tmp) / "object"
            with staged.open("wb") as fh:
                fill(fh)
            return self.store.put(bucket, key, staged)

    # -- objects ----------------------------------------------------------------------------
    def read_csv(self, path: str, *, to_pandas: bool = False, **options: Any) -> Any:
        """The CSV object as a DataFrame (``options`` go to ``polars.read_csv``)."""
        frame = pl.read_csv(io.BytesIO(self._read(path)), **options)
        return _result(frame, to_pandas)

    def write_csv(self, frame: Any, path: str, **options: Any) -> ObjectInfo:
        """Write ``frame`` (polars or pandas) as CSV to ``path``; returns the new object."""
        df = _polars(frame)
        return self._write(path, lambda fh: df.write_csv(fh, **options))

    def read_parquet(self, path: str, *, to_pandas: bool = False, **options: Any) -> Any:
        frame = pl.read_parquet(io.BytesIO(self._read(path)), **options)
        return _result(frame, to_pandas)

    def write_parquet(self, frame: Any, path: str, **options: Any) -> ObjectInfo:
        df = _polars(frame)
        return self._write(path, lambda fh: df.write_parquet(fh, **options))

    def read_json(self, path: str, *, to_pandas: bool = False, **options: Any) -> Any:
        """Newline-delimited JSON (one object a line) as a DataFrame."""
        frame = pl.read_ndjson(io.BytesIO(self._read(path)), **options)
        return _result(frame, to_pandas)

    def write_json(self, frame: Any, path: str) -> ObjectInfo:
        """Write ``frame`` as newline-delimited JSON (one object a line)."""
        df = _polars(frame)
        return self._write(path, lambda fh: df.write_ndjson(fh))

    def write_bytes(self, data: bytes, path: str) -> ObjectInfo:
        """Write raw bytes (a pickled model, an image) to ``path``; ``open`` reads them back."""
        bucket, key = self._split(path)
        self._require_bucket(bucket)
        return self.store.put(bucket, key, data)

    def open(self, path: str, chunk_size: int = 1024**2) -> io.BufferedReader:
        """The object's bytes as a read-only binary file, streamed (never read whole).

        Use it as a context manager; ``.read(n)``, iteration by line and ``.raw.info`` (the
        object's size and etag) work as on a local file.
        """
        bucket, key, info = self._locate(path)
        raw = _StreamReader(self.store.get_stream(bucket, key, chunk_size), info)
        return io.BufferedReader(raw, buffer_size=chunk_size)

    def exists(self, path: str) -> bool:
        bucket, key = self._split(path, key_required=False)
        if not self.store.bucket_exists(bucket):
            return False
        if not key:
            return True
        try:
            self._locate(path)
        except ObjectNotFound:
            return False
        return True

    def rm(self, path: str) -> None:
        """Delete the object (an error naming close keys if there is none)."""
        bucket, key = self._split(path)
        self._require_bucket(bucket)
        try:
            self.store.head(bucket, key)
        except ObjectNotFound:
            raise self._missing_key(bucket, key) from None
        self.store.delete(bucket, key)

    def ls(self, path: str = "", *, recursive: bool = False) -> list[str]:
        """Bucket names (no path), or the ``bucket/key`` paths under ``bucket/prefix``.

        Without ``recursive`` a folder is one entry ending in ``/``, as ``mc ls`` shows it.
        """
        if not path.removeprefix("s3://").strip("/"):
            return sorted(self._bucket_names())
        bucket, prefix = self._split(path, key_required=False)
        self._require_bucket(bucket)
        if recursive:
            return [f"{bucket}/{o.key}" for o in self.store.iter_objects(bucket, prefix)]
        out: list[str] = []
        cursor: str | None = None
        while True:
            page = self.store.list_page(bucket, prefix, "/", cursor, limit=1000)
            out += [f"{bucket}/{f}" for f in page.folders]
            out += [f"{bucket}/{o.key}" for o in page.objects]
            if page.next_cursor is None:
                return sorted(out)
            cursor = page.next_cursor


class Sql:
    """SQL over the lake's tables through the one query API (Trino's names and dialect)."""

    def __init__(self, lake: Lake) -> None:
        self._lake = lake

    def query(self, sql: str, *, limit: int | None = None, to_pandas: bool = False) -> Any:
        from lakehouse.query import query

        lake = self._lake
        try:
            frame = query(sql, limit=limit, settings=lake.settings, store=lake.store)
        except sql_engine.TableNotFound as exc:
            raise _with_suggestions(exc, lake) from None
        return _result(frame, to_pandas)

    def query_arrow(self, sql: str, *, limit: int | None = None) -> pa.Table:
        from lakehouse.query import query_arrow

        lake = self._lake
        try:
            return query_arrow(sql, limit=limit, settings=lake.settings, store=lake.store)
        except sql_engine.TableNotFound as exc:
            raise _with_suggestions(exc, lake) from None

    __call__ = query


def _with_suggestions(exc: sql_engine.TableNotFound, lake: Lake) -> TableNotFound:
    """The engine's missing-table error, naming the lake's closest tables."""
    found = _MISSING_TABLE_RE.search(exc.message)
    hint = _did_you_mean(found.group(1).replace('"', ""), lake.tables.list()) if found else ""
    return TableNotFound(exc.message + hint, exc.line, exc.column)


class Tables:
    """The lake's tables by their SQL names (``delta.default.orders``)."""

    def __init__(self, lake: Lake) -> None:
        self._lake = lake

    def list(self) -> list[str]:
        """Every table as ``catalog.schema.table``, Delta first."""
        from lakehouse.sql import SqlEngine

        lake = self._lake
        engine = SqlEngine(lake.settings, lake.store)
        try:
            names = [
                f"{catalog}.{schema}.{table}"
                for catalog in ("delta", "iceberg")
                for schema in engine.list_schemas(catalog)
                for table in engine.list_tables(catalog, schema)
            ]
        finally:
            engine.close()
        return names

    def read(
        self,
        name: str,
        *,
        version: int | None = None,
        limit: int | None = None,
        to_pandas: bool = False,
    ) -> Any:
        """The table (at ``version``: a Delta version or Iceberg snapshot id) as a DataFrame."""
        existing = self.list()
        parts = name.split(".")
        if len(parts) == 2:  # schema.table: the one catalog that has it
            parts = next(
                (n.split(".") for n in existing if n.split(".")[1:] == parts), ["delta", *parts]
            )
        qualified = ".".join(parts)
        if len(parts) != 3 or qualified not in existing:
            hint = _did_you_mean(qualified, existing)
            raise TableNotFound(f"table '{name}' does not exist{hint}")
        ident = ".".join(
            p if _IDENT_RE.fullmatch(p) else '"' + p.replace('"', '""') + '"' for p in parts
        )
        sql = f"SELECT * FROM {ident}"
        if version is not None:
            sql += f" FOR VERSION AS OF {int(version)}"
        return self._lake.sql.query(sql, limit=limit, to_pandas=to_pandas)


# -- module-level helpers over the default settings ----------------------------------------------
_default = Lake()
tables = _default.tables
sql = _default.sql
read_csv = _default.read_csv
write_csv = _default.write_csv
read_parquet = _default.read_parquet
write_parquet = _default.write_parquet
read_json = _default.read_json
write_json = _default.write_json
write_bytes = _default.write_bytes
ls = _default.ls
open = _default.open  # the helper's documented name (shadows the builtin here only)
exists = _default.exists
rm = _default.rm
