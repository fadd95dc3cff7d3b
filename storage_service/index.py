"""What the service knows is in each bucket: one row per object, kept from the event path.

The directory watcher diffs the folder against it (so changes made while the service was down
are found at start), and bucket statistics are answered from it without listing the bucket.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class IndexedObject:
    size: int
    mtime_ns: int
    etag: str


@dataclass(frozen=True)
class BucketStats:
    objects: int
    size: int
    last_modified_ns: int | None


class ObjectIndex:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects (bucket TEXT NOT NULL, key TEXT NOT NULL,"
            " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, etag TEXT NOT NULL,"
            " PRIMARY KEY (bucket, key))"
        )
        self._lock = threading.Lock()

    def get(self, bucket: str, key: str) -> IndexedObject | None:
        with self._lock:
            row = self._db.execute(
                "SELECT size, mtime_ns, etag FROM objects WHERE bucket = ? AND key = ?",
                (bucket, key),
            ).fetchone()
        return IndexedObject(*row) if row else None

    def snapshot(self, bucket: str) -> dict[str, IndexedObject]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, size, mtime_ns, etag FROM objects WHERE bucket = ?", (bucket,)
            ).fetchall()
        return {k: IndexedObject(s, m, e) for k, s, m, e in rows}

    def buckets(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT bucket FROM objects")]

    def apply(
        self,
        upserts: list[tuple[str, str, IndexedObject]],
        deletes: list[tuple[str, str]],
    ) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO objects (bucket, key, size, mtime_ns, etag)"
                " VALUES (?, ?, ?, ?, ?)",
                [(b, k, o.size, o.mtime_ns, o.etag) for b, k, o in upserts],
            )
            self._db.executemany("DELETE FROM objects WHERE bucket = ? AND key = ?", deletes)
            self._db.execute("COMMIT")

    def replace_bucket(self, bucket: str, rows: list[tuple[str, IndexedObject]]) -> None:
        """Swap in a fresh count of a bucket (S3: from a listing) in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM objects WHERE bucket = ?", (bucket,))
            self._db.executemany(
                "INSERT INTO objects (bucket, key, size, mtime_ns, etag) VALUES (?, ?, ?, ?, ?)",
                [(bucket, k, o.size, o.mtime_ns, o.etag) for k, o in rows],
            )
            self._db.execute("COMMIT")

    def drop_bucket(self, bucket: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM objects WHERE bucket = ?", (bucket,))

    def stats(self, bucket: str) -> BucketStats:
        with self._lock:
            n, size, last = self._db.execute(
                "SELECT count(*), coalesce(sum(size), 0), max(mtime_ns) FROM objects"
                " WHERE bucket = ?",
                (bucket,),
            ).fetchone()
        return BucketStats(n, size, last)

    def close(self) -> None:
        with self._lock:
            self._db.close()
