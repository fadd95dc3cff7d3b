"""The service's SQLite state files (outbox, index), opened only once they prove readable.

SQLite opens garbage lazily and a zero-byte file as an empty database, so a damaged outbox
would otherwise look like one with nothing to publish: its events would be dropped without a
word. Each file is checked when opened and the caller decides: the outbox refuses to start,
the index (derived from the bucket folders) is rebuilt.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


class StateFileCorrupt(RuntimeError):
    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path} is unreadable: {detail}")
        self.path = path
        self.detail = detail


def open_state_db(path: Path) -> sqlite3.Connection:
    """Connect in WAL mode after a quick integrity check; ``StateFileCorrupt`` if it fails.

    A zero-byte file counts as damaged: the service writes the schema right after creating a
    file, so only a truncation leaves one empty.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    empty = path.exists() and path.stat().st_size == 0
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        if empty:
            raise sqlite3.DatabaseError("the file is empty (truncated)")
        db.execute("PRAGMA journal_mode=WAL")
        (result,) = db.execute("PRAGMA quick_check").fetchone()
        if result != "ok":
            raise sqlite3.DatabaseError(str(result))
    except sqlite3.DatabaseError as exc:
        db.close()
        raise StateFileCorrupt(path, str(exc)) from exc
    return db


def move_aside(path: Path, stamp: str) -> Path:
    """Rename a damaged file (and its WAL and shared-memory files) out of the way, kept for
    inspection; returns the new name of the main file."""
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            src.rename(path.with_name(aside.name + suffix))
    return aside
