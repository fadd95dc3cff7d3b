"""What the service knows is in each bucket: one row per object, kept from the event path.

The directory watcher diffs the folder against it (so changes made while the service was down
are found at start), and bucket statistics are answered from it without listing the bucket.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage_service.statedb import StateFileCorrupt, move_aside, open_state_db

log = logging.getLogger(__name__)


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
        try:
            self._db = open_state_db(path)
        except StateFileCorrupt as exc:
            # Derived from the folders: start empty, and the watcher's start-up scan announces
            # every object again (same sequencer, so JetStream drops the repeats in its window
            # and the ledger the rest); changes made while the service was down are found too.
            aside = move_aside(path, datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ"))
            log.warning("%s; moved to %s and rebuilding from the bucket folders", exc, aside)
            self._db = open_state_db(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects (bucket TEXT NOT NULL, key TEXT NOT NULL,"
            " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, etag TEXT NOT NULL,"
            " PRIMARY KEY (bucket, key))"
        )
        self._create_stats()
        self._lock = threading.Lock()

    def _create_stats(self) -> None:
        """Per-bucket totals kept by triggers, so stats cost the same for 10 or 10^6 objects."""
        fresh = not self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'bucket_stats'"
        ).fetchone()
        self._db.executescript(
            """
            BEGIN;
            CREATE TABLE IF NOT EXISTS bucket_stats (bucket TEXT PRIMARY KEY,
                objects INTEGER NOT NULL, size INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS objects_by_mtime ON objects (bucket, mtime_ns);
            CREATE TRIGGER IF NOT EXISTS objects_added AFTER INSERT ON objects BEGIN
                INSERT INTO bucket_stats (bucket, objects, size) VALUES (NEW.bucket, 1, NEW.size)
                ON CONFLICT (bucket) DO UPDATE SET objects = objects + 1, size = size + NEW.size;
            END;
            CREATE TRIGGER IF NOT EXISTS objects_removed AFTER DELETE ON objects BEGIN
                UPDATE bucket_stats SET objects = objects - 1, size = size - OLD.size
                WHERE bucket = OLD.bucket;
            END;
            CREATE TRIGGER IF NOT EXISTS objects_changed AFTER UPDATE OF size ON objects BEGIN
                UPDATE bucket_stats SET size = size - OLD.size + NEW.size
                WHERE bucket = NEW.bucket;
            END;
            COMMIT;
            """
        )
        if fresh:  # an index from before the totals existed: count it once
            self._db.execute(
                "INSERT OR REPLACE INTO bucket_stats SELECT bucket, count(*), sum(size)"
                " FROM objects GROUP BY bucket"
            )

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
            # An upsert (not INSERT OR REPLACE) so the update trigger keeps the totals right.
            self._db.executemany(
                "INSERT INTO objects (bucket, key, size, mtime_ns, etag) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (bucket, key) DO UPDATE SET size = excluded.size,"
                " mtime_ns = excluded.mtime_ns, etag = excluded.etag",
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
            row = self._db.execute(
                "SELECT objects, size FROM bucket_stats WHERE bucket = ?", (bucket,)
            ).fetchone()
            (last,) = self._db.execute(
                "SELECT max(mtime_ns) FROM objects WHERE bucket = ?", (bucket,)
            ).fetchone()
        n, size = row if row else (0, 0)
        return BucketStats(n, size, last)

    def close(self) -> None:
        with self._lock:
            self._db.close()
