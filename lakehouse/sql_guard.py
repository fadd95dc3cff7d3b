"""What a SQL statement is, decided by a parser (sqlglot, Trino dialect), never a regex.

DECISIONS "SQL authorisation": only queries and catalog inspection pass for callers that are not
admins. The classification also gives the tables a statement names (three-part names, with
any ``FOR VERSION/TIMESTAMP AS OF``), so a name inside a string literal or a comment is never
"found", and quoted names with any characters are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

StatementKind = Literal["query", "show", "describe", "other"]

# Statements sqlglot keeps as an opaque command: which are read-only catalog inspection.
READ_COMMANDS = {"SHOW"}


class SqlError(ValueError):
    """A statement the engine could not run: the engine's message and where it points."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


class SqlRefused(SqlError):
    """A statement the caller may not run (writes, DDL, procedures, settings, files)."""


@dataclass
class Statement:
    sql: str
    kind: StatementKind
    tree: exp.Expr
    command: str = ""  # for SHOW: the text after the keyword
    tables: list[exp.Table] = field(default_factory=list)


def parse(sql: str) -> Statement:
    """The one statement in ``sql``, classified; ``SqlError`` (with position) if it is not SQL."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise SqlError("empty statement")
    try:
        trees = [t for t in sqlglot.parse(text, read="trino") if t is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        desc = first.get("description") or str(exc).splitlines()[0]
        raise SqlError(f"syntax error: {desc}", first.get("line"), first.get("col")) from None
    if len(trees) != 1:
        raise SqlError("one statement at a time")
    tree = trees[0]
    if isinstance(tree, exp.Query):
        tables = [t for t in tree.find_all(exp.Table) if t.name]
        return Statement(text, "query", tree, tables=tables)
    if isinstance(tree, exp.Describe):
        tables = [t for t in tree.find_all(exp.Table) if t.name]
        return Statement(text, "describe", tree, tables=tables)
    if isinstance(tree, exp.Command) and str(tree.this).upper() in READ_COMMANDS:
        rest = tree.expression.name if isinstance(tree.expression, exp.Expression) else ""
        return Statement(text, "show", tree, command=str(rest or tree.expression or ""))
    return Statement(text, "other", tree)


def classify(sql: str, *, admin: bool = False) -> Statement:
    """``parse`` plus the authorisation rule: non-admins run only queries and inspection."""
    stmt = parse(sql)
    if stmt.kind == "other" and not admin:
        raise SqlRefused(
            f"{_verb(stmt)} statements are not allowed: only queries (SELECT, WITH, VALUES), "
            "SHOW and DESCRIBE"
        )
    return stmt


def _verb(stmt: Statement) -> str:
    if isinstance(stmt.tree, exp.Command):
        return str(stmt.tree.this).upper()
    return type(stmt.tree).__name__.upper()
