"""A tenant's SQL: read-only, and only its own schema (DECISIONS "SQL authorisation").

``scope_statement`` takes the statement apart with the same parser as ``sql_guard``: every
table it names must be in the tenant's schema of the ``delta``, ``iceberg`` or ``hive`` catalog
(or a name its own ``WITH`` defines; a hive table is in it only if its declaration says so).
``information_schema`` tables are rewritten into a subquery that keeps the tenant's rows only,
so inspection works and shows nothing of other tenants. ``SHOW``
must name the tenant's schema, except ``SHOW CATALOGS`` and ``SHOW SCHEMAS``, whose answer
the caller filters with ``filter_result``. The rewritten statement runs as a non-admin one, so
the guard's read-only rule still applies on top.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from lakehouse.sql_guard import SqlRefused, classify

# A tenant's schema in every catalog: hive tables too, but only those an admin declared in the
# tenant's schema (hive_tables.yaml is the admin's grant of those files to that tenant).
CATALOGS = ("delta", "iceberg", "hive")
# information_schema tables a tenant may read, and the column that names each row's schema.
INFO_SCHEMA_COLUMN = {
    "tables": "table_schema",
    "columns": "table_schema",
    "views": "table_schema",
    "schemata": "schema_name",
}


@dataclass(frozen=True)
class ScopedStatement:
    sql: str
    schemas_listing: bool = False  # SHOW SCHEMAS: keep only the tenant's rows


def _refuse(schema: str, what: str) -> SqlRefused:
    return SqlRefused(
        f"{what} is outside your schema: a tenant queries only "
        f"{' and '.join(f'{c}.{schema}' for c in CATALOGS)}"
    )


def scope_statement(sql: str, schema: str) -> ScopedStatement:
    """The statement as the tenant whose tables are in ``schema`` may run it, or SqlRefused."""
    stmt = classify(sql, admin=False)
    if stmt.kind == "show":
        return _scope_show(stmt.command, schema)
    ctes = {cte.alias_or_name.lower() for cte in stmt.tree.find_all(exp.CTE)}
    rewritten = False
    for table in list(stmt.tree.find_all(exp.Table)):
        if not table.name:  # a table function: a tenant reads its tables, nothing else
            raise _refuse(schema, f"table function {table.sql(dialect='trino')[:60]}")
        catalog, db, name = table.catalog.lower(), table.db.lower(), table.name.lower()
        if not catalog and not db and name in ctes:
            continue
        shown = ".".join(p for p in (catalog, db, name) if p)
        if catalog not in CATALOGS:
            raise _refuse(schema, f"table {shown} (name it as catalog.schema.table)")
        if db == "information_schema":
            column = INFO_SCHEMA_COLUMN.get(name)
            if column is None:
                raise _refuse(schema, f"table {shown}")
            inner = (
                exp.select("*")
                .from_(table.copy())
                .where(exp.column(column).eq(exp.Literal.string(schema)))
            )
            table.replace(inner.subquery(table.alias_or_name))
            rewritten = True
            continue
        if db != schema:
            raise _refuse(schema, f"table {shown}")
    text = stmt.tree.sql(dialect="trino") if rewritten else stmt.sql
    return ScopedStatement(text)


def _scope_show(command: str, schema: str) -> ScopedStatement:
    words = command.replace(";", " ").split()
    what = " ".join(w.upper() for w in words[:2])
    if what.startswith("CATALOGS"):
        return ScopedStatement(f"SHOW {command}")
    if what.startswith("SCHEMAS"):
        return ScopedStatement(f"SHOW {command}", schemas_listing=True)
    # SHOW TABLES FROM c.s / SHOW COLUMNS FROM c.s.t / SHOW CREATE TABLE c.s.t: the name's
    # schema must be the tenant's.
    targets = [
        words[i + 1]
        for i, word in enumerate(words[:-1])
        if word.upper() in ("FROM", "IN", "TABLE", "VIEW")
    ]
    for target in targets or [""]:
        parts = [p.strip('"').lower() for p in target.split(".")]
        if len(parts) < 2 or parts[0] not in CATALOGS or parts[1] != schema:
            raise _refuse(schema, f"SHOW {command}".strip())
    return ScopedStatement(f"SHOW {command}")


def filter_result(scoped: ScopedStatement, table: pa.Table, schema: str) -> pa.Table:
    """``SHOW SCHEMAS`` answers every schema: keep the tenant's (and information_schema)."""
    if not scoped.schemas_listing or table.num_columns == 0:
        return table
    names = pc.utf8_lower(table.column(0).cast(pa.string()))
    keep = pc.is_in(names, value_set=pa.array([schema, "information_schema"]))
    return table.filter(keep)
