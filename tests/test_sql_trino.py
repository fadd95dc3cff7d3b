"""The Trino path of the query API: the statements and client calls it makes.

A real Trino cannot run on the build machine; ``make compose-smoke`` covers it where Docker is.
"""

from __future__ import annotations

from typing import Any

import pytest

from lakehouse.query import TrinoEngine, open_engine, query
from lakehouse.settings import Settings
from lakehouse.sql_guard import SqlError, SqlRefused


class FakeCursor:
    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log
        self.description: list[tuple[str, str]] | None = None

    def execute(self, operation: str, params: Any = None) -> None:
        self.log.append(("execute", operation))
        if "nope" in operation:
            err = RuntimeError("line 1:15: Table 'delta.default.nope' does not exist")
            err.message = "Table 'delta.default.nope' does not exist"  # type: ignore[attr-defined]
            err.error_location = (1, 15)  # type: ignore[attr-defined]
            raise err
        self.description = [("id", "bigint"), ("name", "varchar")]

    def fetchall(self) -> list[list[Any]]:
        self.log.append(("fetchall", None))
        return [[1, "a"], [2, "b"], [3, "c"]]

    def fetchmany(self, n: int) -> list[list[Any]]:
        self.log.append(("fetchmany", n))
        return self.fetchall()[:n]

    def cancel(self) -> None:
        self.log.append(("cancel", None))


def make(log: list[tuple[str, Any]]) -> tuple[Settings, Any]:
    settings = Settings(trino_url="http://trino.example:8080")
    return settings, lambda s: FakeCursor(log)


def test_trino_is_chosen_when_configured_and_results_are_arrow() -> None:
    log: list[tuple[str, Any]] = []
    settings, connect = make(log)
    assert isinstance(open_engine(settings), TrinoEngine)
    engine = TrinoEngine(settings, connect)
    sql = "SELECT id, name FROM delta.default.orders FOR VERSION AS OF 3"
    table = engine.arrow(sql, limit=2)
    assert table.to_pylist() == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    assert log == [("execute", sql), ("fetchmany", 2), ("fetchall", None)]


def test_trino_refuses_writes_for_non_admins_before_calling_trino() -> None:
    log: list[tuple[str, Any]] = []
    engine = TrinoEngine(*make(log))
    with pytest.raises(SqlRefused):
        engine.arrow("DROP TABLE delta.default.orders")
    with pytest.raises(SqlRefused):
        engine.arrow("CALL delta.system.register_table('a', 'b', 'c')")
    assert log == []
    engine.arrow("SHOW TABLES FROM delta.default")
    assert log[0] == ("execute", "SHOW TABLES FROM delta.default")


def test_trino_errors_keep_message_and_position() -> None:
    engine = TrinoEngine(*make([]))
    with pytest.raises(SqlError) as err:
        engine.arrow("SELECT * FROM delta.default.nope")
    assert "does not exist" in err.value.message
    assert (err.value.line, err.value.column) == (1, 15)


def test_trino_client_connects_as_the_read_only_principal(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    log: list[tuple[str, Any]] = []

    class Conn:
        def cursor(self) -> FakeCursor:
            return FakeCursor(log)

    def connect(**kwargs: Any) -> Conn:
        calls.append(kwargs)
        return Conn()

    import trino.dbapi

    monkeypatch.setattr(trino.dbapi, "connect", connect)
    settings = Settings(trino_url="https://trino.example:8443", sql_timeout_seconds=30)
    df = query("SELECT 1", settings=settings)
    assert df.shape == (3, 2)
    assert calls[0]["host"] == "trino.example" and calls[0]["port"] == 8443
    assert calls[0]["http_scheme"] == "https" and calls[0]["user"] == "lakewire-sql"


def test_cancel_calls_the_client() -> None:
    log: list[tuple[str, Any]] = []
    engine = TrinoEngine(*make(log))
    engine._cursor = FakeCursor(log)
    engine.interrupt()
    assert log == [("cancel", None)]
