"""The one query API: ``query(sql, *, limit=None) -> polars.DataFrame`` and ``query_arrow``.

Backed by Trino (the ``trino`` client, as the read-only principal ``sql_trino_user``, or the
principal a caller names: the storage service names a tenant's, ``tenant-<id>``, so Trino's own
rules keep it in its schema too) when ``LAKEWIRE_TRINO_URL`` is set, else by the embedded
engine (``lakehouse.sql``). Both take
Trino's SQL with three-part names (``delta.default.orders``), ``SHOW``/``DESCRIBE`` and
``FOR VERSION/TIMESTAMP AS OF``. Statements are classified by ``lakehouse.sql_guard`` first:
only queries and catalog inspection unless ``admin=True``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal, Protocol

import polars as pl
import pyarrow as pa

from lakehouse.objectstore import ObjectStore, open_object_store
from lakehouse.settings import Settings
from lakehouse.sql import SqlEngine
from lakehouse.sql_guard import SqlError, classify

EngineName = Literal["trino", "embedded"]


class Engine(Protocol):
    def arrow(self, sql: str, *, limit: int | None = None, admin: bool = False) -> pa.Table: ...
    def interrupt(self) -> None: ...
    def close(self) -> None: ...


class TrinoEngine:
    """Trino through its DB-API client; results become Arrow (column by column)."""

    def __init__(
        self,
        settings: Settings,
        connect: Callable[[Settings], Any] | None = None,
        *,
        user: str | None = None,
    ) -> None:
        self.settings = settings
        self.user = user or settings.sql_trino_user
        self._connect = connect or (lambda s: _connect_trino(s, self.user))
        self._cursor: Any = None
        self._lock = threading.Lock()

    def arrow(self, sql: str, *, limit: int | None = None, admin: bool = False) -> pa.Table:
        stmt = classify(sql, admin=admin)
        cur = self._connect(self.settings)
        with self._lock:
            self._cursor = cur
        try:
            cur.execute(stmt.sql)
            rows = cur.fetchmany(limit) if limit is not None else cur.fetchall()
            names = [d[0] for d in cur.description or []]
        except Exception as exc:
            raise _trino_error(exc) from None
        finally:
            with self._lock:
                self._cursor = None
        columns = {n: [r[i] for r in rows] for i, n in enumerate(names)}
        if len(set(names)) != len(names):  # Arrow tables from dicts need unique names
            return pa.Table.from_arrays([pa.array(v) for v in columns.values()], names=names)
        return pa.table({n: pa.array(v) for n, v in columns.items()})

    def interrupt(self) -> None:
        with self._lock:
            cur = self._cursor
        if cur is not None:
            cur.cancel()

    def close(self) -> None:
        pass


def _connect_trino(settings: Settings, user: str) -> Any:
    from urllib.parse import urlsplit

    from trino.dbapi import connect

    url = urlsplit(settings.trino_url or "")
    conn = connect(
        host=url.hostname or "localhost",
        port=url.port or (443 if url.scheme == "https" else 8080),
        http_scheme=url.scheme or "http",
        user=user,
        request_timeout=settings.sql_timeout_seconds,
    )
    return conn.cursor()


def _trino_error(exc: Exception) -> SqlError:
    message = getattr(exc, "message", None) or str(exc)
    pos = getattr(exc, "error_location", None)
    line, column = pos if isinstance(pos, tuple) and len(pos) == 2 else (None, None)
    return SqlError(str(message), line, column)


def engine_name(settings: Settings, engine: EngineName | None = None) -> EngineName:
    return engine or ("trino" if settings.trino_url else "embedded")


def open_engine(
    settings: Settings | None = None,
    store: ObjectStore | None = None,
    *,
    engine: EngineName | None = None,
    trino_user: str | None = None,
) -> Engine:
    """``trino_user``: the principal Trino runs the statements as (default ``sql_trino_user``);
    the embedded engine has no principals (the caller scopes statements itself)."""
    settings = settings or Settings()
    if engine_name(settings, engine) == "trino":
        if not settings.trino_url:
            raise SqlError("the trino engine needs LAKEWIRE_TRINO_URL")
        return TrinoEngine(settings, user=trino_user)
    return SqlEngine(settings, store or open_object_store(settings))


def query_arrow(
    sql: str,
    *,
    limit: int | None = None,
    settings: Settings | None = None,
    store: ObjectStore | None = None,
    engine: EngineName | None = None,
    admin: bool = False,
) -> pa.Table:
    """The statement's result as an Arrow table (at most ``limit`` rows)."""
    eng = open_engine(settings, store, engine=engine)
    try:
        return eng.arrow(sql, limit=limit, admin=admin)
    finally:
        eng.close()


def query(
    sql: str,
    *,
    limit: int | None = None,
    settings: Settings | None = None,
    store: ObjectStore | None = None,
    engine: EngineName | None = None,
    admin: bool = False,
) -> pl.DataFrame:
    """The statement's result as a polars DataFrame (at most ``limit`` rows)."""
    table = query_arrow(
        sql, limit=limit, settings=settings, store=store, engine=engine, admin=admin
    )
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame
