"""SQL API behind SQL Studio and ``lakewire sql``: run, page, cancel, download, catalog tree.

``POST /api/sql`` runs one statement (Trino when ``LAKEWIRE_TRINO_URL`` is set, else the embedded
engine, ``lakehouse.query``) in a worker thread, so a slow query never blocks the service; the
answer is the first page, and ``page_token`` fetches the next ones from the result the service
keeps for ``sql_result_ttl_seconds`` (at most ``sql_max_rows`` rows: more are cut, and the
answer says ``truncated``). A query runs at most ``sql_timeout_seconds`` (then 408).
``DELETE /api/sql/{query_id}`` interrupts a running query: the caller may choose the
``query_id`` in the request so it can cancel before the answer arrives.

Bad SQL answers 400 with the engine's message and the ``line``/``column`` it points at; a
statement the caller may not run (writes, DDL, procedures, settings, file access) 403; an
unknown table 404.

A tenant's statements run read-only and only over its own schema (``lakehouse.sql_scope``);
its results, pages and downloads are its own: another caller asking for them gets 404.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Annotated, Any, Literal

import pyarrow as pa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from lakehouse.audit_table import names_audit_table
from lakehouse.query import Engine, EngineName, engine_name, open_engine
from lakehouse.settings import Settings
from lakehouse.sql import CATALOGS, SqlEngine, TableNotFound
from lakehouse.sql_guard import SqlError, SqlRefused
from lakehouse.sql_scope import filter_result, scope_statement
from lakehouse.tenants import tenant_trino_user
from storage_service.access import Caller, Runtime, principal
from storage_service.authz import Principal

router = APIRouter(prefix="/api/sql", tags=["sql"], dependencies=[Depends(principal)])


class SqlRequest(BaseModel):
    statement: str | None = Field(default=None, description="One SQL statement (Trino's SQL).")
    limit: int | None = Field(default=None, ge=1, description="Rows per page (default setting).")
    page_token: str | None = Field(default=None, description="The next page of an earlier answer.")
    query_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Chosen by the caller to cancel the query before it answers.",
    )
    engine: EngineName | None = None


class Column(BaseModel):
    name: str
    type: str


class SqlPage(BaseModel):
    query_id: str
    engine: str
    columns: list[Column]
    rows: list[list[Any]]
    offset: int
    row_count: int = Field(description="Rows the result holds (capped at sql_max_rows).")
    truncated: bool
    next_page_token: str | None
    elapsed_ms: float


@dataclass
class _Result:
    table: pa.Table
    engine: str
    truncated: bool
    elapsed_ms: float
    expires: float
    owner: str  # the principal that ran it: the only one who may page or download it


@dataclass
class SqlState:
    running: dict[str, Engine] = field(default_factory=dict)
    runners: dict[str, str] = field(default_factory=dict)  # query id -> principal
    cancelled: set[str] = field(default_factory=set)
    results: dict[str, _Result] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sweep(self) -> None:
        now = time.monotonic()
        with self.lock:
            for qid in [q for q, r in self.results.items() if r.expires < now]:
                del self.results[qid]


def trino_user(who: Principal) -> str | None:
    """A tenant's statements reach Trino as the tenant's own principal, so Trino's rules
    (``lakehouse.trino_rules``) hold it to its schema even if the statement check missed
    something; the admin's run as the configured read-only principal, as before."""
    return tenant_trino_user(who.id) if who.tenant is not None else None


def _state(request: Request) -> SqlState:
    state = getattr(request.app.state, "sql", None)
    if state is None:
        state = request.app.state.sql = SqlState()
    return state


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def _page(qid: str, result: _Result, offset: int, size: int) -> SqlPage:
    table = result.table
    chunk = table.slice(offset, size)
    columns = [Column(name=f.name, type=str(f.type)) for f in table.schema]
    rows = [[jsonable(v) for v in row.values()] for row in chunk.to_pylist()]
    end = offset + chunk.num_rows
    return SqlPage(
        query_id=qid,
        engine=result.engine,
        columns=columns,
        rows=rows,
        offset=offset,
        row_count=table.num_rows,
        truncated=result.truncated,
        next_page_token=f"{qid}:{end}" if end < table.num_rows else None,
        elapsed_ms=result.elapsed_ms,
    )


def _error(exc: SqlError, status: int) -> JSONResponse:
    return JSONResponse(
        {"detail": exc.message, "line": exc.line, "column": exc.column}, status_code=status
    )


@router.post("", response_model=SqlPage)
async def run_sql(body: SqlRequest, request: Request, rt: Runtime, who: Caller) -> Any:
    settings = rt.settings
    state = _state(request)
    state.sweep()
    size = min(body.limit or settings.sql_page_rows, settings.sql_max_rows)
    if body.page_token:
        qid, _, offset = body.page_token.rpartition(":")
        with state.lock:
            result = state.results.get(qid)
        if result is None or result.owner != who.id or not offset.isdigit():
            raise HTTPException(404, "the result has expired or never existed: run it again")
        return _page(qid, result, int(offset), size)
    if not body.statement or not body.statement.strip():
        raise HTTPException(422, "statement is required")
    statement = body.statement
    scoped = None
    if who.schema is not None:
        try:
            scoped = scope_statement(statement, who.schema)
        except SqlRefused as exc:
            request.state.denied = exc.message  # the audit record says why
            return _error(exc, 403)
        except SqlError as exc:
            return _error(exc, 400)
        statement = scoped.sql
    qid = body.query_id or uuid.uuid4().hex
    try:
        engine = open_engine(settings, rt.store, engine=body.engine, trino_user=trino_user(who))
    except SqlError as exc:
        return _error(exc, 400)
    with state.lock:
        if qid in state.running or qid in state.results:
            raise HTTPException(409, f"query id {qid} is in use")
        state.running[qid] = engine
        state.runners[qid] = who.id
    cap = settings.sql_max_rows

    def work() -> pa.Table:
        try:
            if scoped is None or who.schema is None:
                if who.is_admin and names_audit_table(statement):
                    rt.flush_audit()
                return engine.arrow(statement, limit=cap + 1, admin=who.is_admin)
            table = engine.arrow(statement, limit=cap + 1, admin=False)
            return filter_result(scoped, table, who.schema)
        finally:
            engine.close()

    t0 = time.perf_counter()
    try:
        table = await asyncio.wait_for(asyncio.to_thread(work), settings.sql_timeout_seconds)
    except TimeoutError:
        engine.interrupt()
        raise HTTPException(
            408, f"the query ran longer than {settings.sql_timeout_seconds:g} s and was stopped"
        ) from None
    except SqlRefused as exc:
        request.state.denied = exc.message
        return _error(exc, 403)
    except TableNotFound as exc:
        return _error(exc, 404)
    except SqlError as exc:
        if qid in state.cancelled:
            return JSONResponse({"detail": "query cancelled", "query_id": qid}, status_code=409)
        return _error(exc, 400)
    finally:
        with state.lock:
            state.running.pop(qid, None)
            state.runners.pop(qid, None)
            state.cancelled.discard(qid)
    elapsed = (time.perf_counter() - t0) * 1000
    truncated = table.num_rows > cap
    result = _Result(
        table.slice(0, cap),
        engine_name(settings, body.engine),
        truncated,
        round(elapsed, 1),
        time.monotonic() + settings.sql_result_ttl_seconds,
        who.id,
    )
    with state.lock:
        state.results[qid] = result
    return _page(qid, result, 0, size)


@router.delete("/{query_id}")
async def cancel_sql(query_id: str, request: Request, who: Caller) -> dict[str, Any]:
    state = _state(request)
    with state.lock:
        engine = state.running.get(query_id)
        if engine is not None and state.runners.get(query_id) != who.id:
            engine = None
        if engine is not None:
            state.cancelled.add(query_id)
        result = state.results.get(query_id)
        dropped = None
        if result is not None and result.owner == who.id:
            dropped = state.results.pop(query_id)
    if engine is not None:
        await asyncio.to_thread(engine.interrupt)
        return {"query_id": query_id, "cancelled": True}
    if dropped is not None:
        return {"query_id": query_id, "cancelled": False, "result_dropped": True}
    raise HTTPException(404, f"no running query or result {query_id}")


@router.get("/{query_id}/download")
async def download(
    query_id: str,
    request: Request,
    who: Caller,
    fmt: Annotated[Literal["csv", "parquet"], Query(alias="format")] = "csv",
) -> Response:
    """The whole (capped) result as CSV or Parquet."""
    with _state(request).lock:
        result = _state(request).results.get(query_id)
    if result is None or result.owner != who.id:
        raise HTTPException(404, "the result has expired or never existed: run it again")
    buf = io.BytesIO()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(result.table, buf)
        media = "application/vnd.apache.parquet"
    else:
        import pyarrow.csv as pcsv

        pcsv.write_csv(result.table, buf)
        media = "text/csv"
    return Response(
        buf.getvalue(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="result-{query_id}.{fmt}"'},
    )


class CatalogColumn(BaseModel):
    name: str
    type: str


class CatalogTable(BaseModel):
    name: str
    columns: list[CatalogColumn]


class CatalogSchema(BaseModel):
    name: str
    tables: list[CatalogTable]


class CatalogNode(BaseModel):
    name: str
    schemas: list[CatalogSchema]
    error: str | None = Field(
        default=None, description="Why the catalog could not be listed (a bad hive_tables.yaml)."
    )


class CatalogTree(BaseModel):
    engine: str
    lake_bucket: str = Field(description="The bucket whose folders hold the Delta tables.")
    catalogs: list[CatalogNode]


@router.get("/catalog", response_model=CatalogTree)
async def catalog_tree(rt: Runtime, who: Caller) -> CatalogTree:
    """catalog → schema → table → columns with types, as the engine sees them; a tenant's
    tree holds its own schema only."""
    settings = rt.settings
    tree = await asyncio.to_thread(_catalog_tree, settings, rt.store, trino_user(who))
    if who.schema is not None:
        for node in tree.catalogs:
            node.schemas = [s for s in node.schemas if s.name.lower() == who.schema]
    return tree


def _catalog_tree(settings: Settings, store: Any, user: str | None) -> CatalogTree:
    name = engine_name(settings)
    engine = open_engine(settings, store, trino_user=user)
    try:
        if isinstance(engine, SqlEngine):
            return CatalogTree(
                engine=name,
                lake_bucket=settings.lake_bucket,
                catalogs=[_listed(partial(_embedded_catalog, engine, c), c) for c in CATALOGS],
            )
        nodes = [_listed(partial(_trino_catalog, engine, c), c) for c in CATALOGS]
        return CatalogTree(engine=name, lake_bucket=settings.lake_bucket, catalogs=nodes)
    finally:
        engine.close()


def _listed(listing: Callable[[], CatalogNode], catalog: str) -> CatalogNode:
    """One catalog's node; a catalog that cannot be listed says why instead of failing the
    tree (a bad hive declaration must not hide the Delta and Iceberg tables)."""
    try:
        return listing()
    except SqlError as exc:
        return CatalogNode(name=catalog, schemas=[], error=exc.message)


def _trino_catalog(engine: Engine, catalog: str) -> CatalogNode:
    rows = engine.arrow(
        "SELECT table_schema, table_name, column_name, data_type "
        f"FROM {catalog}.information_schema.columns "
        "WHERE table_schema <> 'information_schema' "
        "ORDER BY table_schema, table_name, ordinal_position"
    ).to_pylist()
    return _tree_from_rows(catalog, rows)


def _embedded_catalog(engine: SqlEngine, catalog: str) -> CatalogNode:
    schemas = []
    for schema in engine.list_schemas(catalog):
        tables = []
        for table in engine.list_tables(catalog, schema):
            try:
                cols = engine.arrow(f'DESCRIBE {catalog}."{schema}"."{table}"').to_pylist()
            except SqlError:
                cols = []
            tables.append(
                CatalogTable(
                    name=table,
                    columns=[CatalogColumn(name=c["Column"], type=c["Type"]) for c in cols],
                )
            )
        schemas.append(CatalogSchema(name=schema, tables=tables))
    return CatalogNode(name=catalog, schemas=schemas)


def _tree_from_rows(catalog: str, rows: list[dict[str, Any]]) -> CatalogNode:
    schemas: dict[str, dict[str, list[CatalogColumn]]] = {}
    for r in rows:
        cols = schemas.setdefault(r["table_schema"], {}).setdefault(r["table_name"], [])
        cols.append(CatalogColumn(name=r["column_name"], type=r["data_type"]))
    return CatalogNode(
        name=catalog,
        schemas=[
            CatalogSchema(
                name=s, tables=[CatalogTable(name=t, columns=c) for t, c in tables.items()]
            )
            for s, tables in schemas.items()
        ],
    )
