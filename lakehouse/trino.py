"""Making Delta tables visible to Trino: schemas and ``register_table``, idempotent and retried.

delta-rs writes tables straight into ``s3://<lake>/<schema>/<table>``; Trino's Delta connector
(file metastore, ``deploy/trino/catalog/delta.properties``) only sees a table once it is
registered, and its file metastore creates no schema, not even ``default``. So, on the platform:

- ``trino-init`` (``python -m lakewire.platform_init trino``) creates the configured schemas;
- the ingestion run calls :func:`register_delta_table` after a table's first commit (it is a
  no-op when Trino already knows the table), and after a schema change, which flushes Trino's
  metadata cache for the table so new columns show at once.

Iceberg tables need none of this: pyiceberg and Trino share the REST catalog (Lakekeeper).

The statements are exactly the documented forms:

    CREATE SCHEMA IF NOT EXISTS delta.default WITH (location = 's3://lake/default')
    CALL delta.system.register_table(schema_name => 'default', table_name => 'orders',
                                     table_location => 's3://lake/default/orders')
    CALL delta.system.flush_metadata_cache(schema_name => 'default', table_name => 'orders')

Nothing here runs unless ``LAKEWIRE_TRINO_URL`` is set (the embedded default has no Trino).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from lakehouse.settings import Settings
from lakehouse.tables import TableRef

IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
REGISTER_TABLE_ARGS = ("schema_name", "table_name", "table_location")


class TrinoError(RuntimeError):
    pass


class Cursor(Protocol):
    def execute(self, operation: str, params: Any = None) -> Any: ...
    def fetchall(self) -> list[Any]: ...


def _ident(name: str) -> str:
    if not IDENT_RE.match(name):
        raise TrinoError(f"'{name}' is not a plain lower-case identifier Trino accepts unquoted")
    return name


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def schema_location(settings: Settings, schema: str) -> str:
    return f"s3://{settings.lake_bucket}/{schema}"


def table_location(settings: Settings, ref: TableRef) -> str:
    """Where ingestion writes the Delta table (``lakehouse.tables.delta_table_uri`` on S3)."""
    return f"{schema_location(settings, ref.schema)}/{ref.name}"


def create_schema_sql(settings: Settings, schema: str, catalog: str = "delta") -> str:
    return (
        f"CREATE SCHEMA IF NOT EXISTS {_ident(catalog)}.{_ident(schema)} "
        f"WITH (location = {_literal(schema_location(settings, schema))})"
    )


def register_table_sql(settings: Settings, ref: TableRef, catalog: str = "delta") -> str:
    args = {
        "schema_name": _ident(ref.schema),
        "table_name": _ident(ref.name),
        "table_location": table_location(settings, ref),
    }
    named = ", ".join(f"{k} => {_literal(args[k])}" for k in REGISTER_TABLE_ARGS)
    return f"CALL {_ident(catalog)}.system.register_table({named})"


def flush_cache_sql(ref: TableRef, catalog: str = "delta") -> str:
    return (
        f"CALL {_ident(catalog)}.system.flush_metadata_cache("
        f"schema_name => {_literal(_ident(ref.schema))}, "
        f"table_name => {_literal(_ident(ref.name))})"
    )


def table_exists_sql(ref: TableRef, catalog: str = "delta") -> str:
    return (
        f"SELECT count(*) FROM {_ident(catalog)}.information_schema.tables "
        f"WHERE table_schema = {_literal(_ident(ref.schema))} "
        f"AND table_name = {_literal(_ident(ref.name))}"
    )


def run_statement(cur: Cursor, sql: str) -> list[Any]:
    """The statement run to completion, and its rows (``lakehouse.hive`` uses it too)."""
    cur.execute(sql)
    return cur.fetchall()  # the trino client runs a statement to completion only when read


def ensure_schemas(
    cur: Cursor, settings: Settings, schemas: Sequence[str], catalog: str = "delta"
) -> list[str]:
    for schema in schemas:
        run_statement(cur, create_schema_sql(settings, schema, catalog))
    return list(schemas)


def ensure_registered(
    cur: Cursor, settings: Settings, ref: TableRef, *, catalog: str = "delta", flush: bool = False
) -> bool:
    """Schema, then the table unless Trino has it; True when this call registered it.

    ``flush`` drops Trino's cached metadata of the table (after a schema change). A concurrent
    registration of the same table (two runs, a retry) is recognised and not an error.
    """
    if ref.format != "delta":
        raise TrinoError(f"{ref.qualified}: only Delta tables are registered (Iceberg uses REST)")
    run_statement(cur, create_schema_sql(settings, ref.schema, catalog))
    if run_statement(cur, table_exists_sql(ref, catalog))[0][0]:
        if flush:
            run_statement(cur, flush_cache_sql(ref, catalog))
        return False
    try:
        run_statement(cur, register_table_sql(settings, ref, catalog))
    except Exception as exc:
        if "already exists" not in str(exc).lower():
            raise
        return False
    return True


def connect_trino(config: Settings) -> Cursor:
    from trino.dbapi import connect

    if not config.trino_url:
        raise TrinoError("LAKEWIRE_TRINO_URL is not set")
    url = urlsplit(config.trino_url)
    conn = connect(
        host=url.hostname or "localhost",
        port=url.port or (443 if url.scheme == "https" else 8080),
        http_scheme=url.scheme or "http",
        user=config.trino_user,
        catalog=config.trino_catalog,
    )
    cursor: Cursor = conn.cursor()
    return cursor


def register_delta_table(
    settings: Settings,
    ref: TableRef,
    *,
    schema_changed: bool = False,
    connect: Callable[[Settings], Cursor] = connect_trino,
    sleep: Callable[[float], None] = time.sleep,
) -> bool | None:
    """Make ``ref`` visible in Trino; None when no Trino is configured. Retried with backoff.

    Call it after every successful Delta commit of an ingestion run (cheap when the table is
    already registered: one ``CREATE SCHEMA IF NOT EXISTS`` and one information_schema query),
    with ``schema_changed=True`` when the commit evolved the schema. Raises ``TrinoError`` after
    the last attempt, so the caller can fail an asset check rather than the ingestion.
    """
    trino = settings
    if not trino.trino_url or ref.format != "delta":
        return None
    delay = 0.5
    for attempt in range(1, trino.trino_register_attempts + 1):
        try:
            return ensure_registered(
                connect(trino), settings, ref, catalog=trino.trino_catalog, flush=schema_changed
            )
        except TrinoError:
            raise
        except Exception as exc:
            if attempt == trino.trino_register_attempts:
                raise TrinoError(f"registering {ref.qualified} in Trino: {exc}") from exc
            sleep(delay)
            delay = min(delay * 2, 8.0)
    return None  # pragma: no cover - the loop returns or raises
