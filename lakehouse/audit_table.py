"""The audit log as a table: ``delta.system.audit``, a real Delta table in the lake.

The storage service writes each audit record synchronously to ``state/audit.jsonl`` (append-only,
so a refusal is on disk before its answer leaves); this module copies the lines that are not yet
in the table into it, and the SQL API does so just before it runs an admin's statement that names
the table, so a query through the API always sees every record up to its own call. Not on a
timer: a lake that nobody asks about its audit gets no ``system`` schema and no commits.

A Delta table rather than a view the embedded engine builds from the JSONL,
because then every reader of the lake sees the same rows (the embedded engine, delta-rs in a
notebook, Trino once the table is registered there), with its history and time travel, and the
tenant SQL scope needs no special case: ``system`` is a reserved tenant id, so no tenant's schema
is ``system`` and a tenant naming ``delta.system.audit`` is refused like any other schema.

Exactly once: the byte offset of the JSONL up to which rows are in the table is a Delta
application transaction committed with the rows, so a flush that died before its commit is
redone from the old offset and one that committed is never repeated. Only whole lines are copied.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, Transaction, write_deltalake

from lakehouse.delta import open_table
from lakehouse.objectstore import ObjectStore
from lakehouse.settings import Settings
from lakehouse.sql import HISTORY_SUFFIX
from lakehouse.sql_guard import SqlError, classify
from lakehouse.tables import TableRef, delta_table_uri

AUDIT_TABLE = TableRef("delta", "system", "audit")
APP_ID = "lakewire-audit-log"
_FLUSHING = threading.Lock()  # one flush at a time in a process: two would copy the same lines
SCHEMA = pa.schema(
    [
        ("at", pa.timestamp("ms", tz="UTC")),
        ("principal", pa.string()),
        ("key_id", pa.string()),
        ("method", pa.string()),
        ("path", pa.string()),
        ("status", pa.int32()),
        ("client", pa.string()),
        ("detail", pa.string()),
    ]
)


def audit_path(settings: Settings) -> Path:
    """The JSONL the service appends to (mode 0600): the log's source of truth."""
    return settings.state_dir / "audit.jsonl"


def names_audit_table(sql: str) -> bool:
    """Whether the statement reads ``delta.system.audit`` (or its ``$history``)."""
    try:
        tables = classify(sql, admin=True).tables
    except SqlError:
        return False  # the engine will say what is wrong with it
    return any(
        (t.catalog.lower(), t.db.lower(), t.name.lower().removesuffix(HISTORY_SUFFIX))
        == (AUDIT_TABLE.format, AUDIT_TABLE.schema, AUDIT_TABLE.name)
        for t in tables
    )


def _row(record: dict[str, Any]) -> dict[str, Any]:
    row = {name: record.get(name) for name in SCHEMA.names}
    row["at"] = datetime.fromisoformat(record["at"])
    return row


def flush_audit(settings: Settings, store: ObjectStore) -> int:
    """Append the audit records not yet in ``delta.system.audit``; how many were appended."""
    with _FLUSHING:
        return _flush(settings, store)


def _flush(settings: Settings, store: ObjectStore) -> int:
    source = audit_path(settings)
    if not source.exists():
        return 0
    uri = delta_table_uri(settings, store, AUDIT_TABLE)
    options = store.storage_options() or None
    dt = open_table(uri, store.storage_options())
    done = (dt.transaction_version(APP_ID) if dt is not None else None) or 0
    with source.open("rb") as f:
        f.seek(done)
        data = f.read()
    end = data.rfind(b"\n") + 1  # a line still being written waits for the next flush
    if end == 0:
        return 0
    rows = [_row(json.loads(line)) for line in data[:end].splitlines() if line.strip()]
    write_deltalake(
        uri,
        pa.Table.from_pylist(rows, schema=SCHEMA),
        mode="append",
        storage_options=options,
        commit_properties=CommitProperties(
            app_transactions=[Transaction(app_id=APP_ID, version=done + end)],
            custom_metadata={"lakewire.operation": "audit", "lakewire.sources": str(len(rows))},
        ),
    )
    return len(rows)
