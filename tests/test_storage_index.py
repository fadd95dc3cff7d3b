"""The object index keeps per-bucket totals in step with every change, and survives a restart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage_service.index import IndexedObject, ObjectIndex


def _obj(size: int, mtime: int = 1) -> IndexedObject:
    return IndexedObject(size, mtime, "etag")


def test_totals_follow_inserts_updates_deletes_and_replacements(tmp_path: Path) -> None:
    ix = ObjectIndex(tmp_path / "index.db")
    ix.apply([("b", f"k{i}", _obj(10, i)) for i in range(1000)], [])
    ix.apply([("b", "k1", _obj(25, 5000))], [("b", "k2"), ("b", "missing")])
    ix.apply([("other", "x", _obj(3))], [])
    st = ix.stats("b")
    assert (st.objects, st.size, st.last_modified_ns) == (999, 999 * 10 + 15, 5000)
    ix.replace_bucket("b", [("only", _obj(7, 9))])
    assert ix.stats("b") == ix.stats("b").__class__(1, 7, 9)
    ix.drop_bucket("b")
    assert (ix.stats("b").objects, ix.stats("b").size) == (0, 0)
    assert ix.stats("other").objects == 1
    ix.close()
    reopened = ObjectIndex(tmp_path / "index.db")
    assert reopened.stats("other").size == 3


def test_an_index_from_before_the_totals_is_counted_once(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE objects (bucket TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL,"
        " mtime_ns INTEGER NOT NULL, etag TEXT NOT NULL, PRIMARY KEY (bucket, key))"
    )
    db.executemany(
        "INSERT INTO objects VALUES (?, ?, ?, ?, ?)",
        [("old", f"k{i}", 4, i, "e") for i in range(5)],
    )
    db.commit()
    db.close()
    ix = ObjectIndex(path)
    assert (ix.stats("old").objects, ix.stats("old").size) == (5, 20)
    ix.apply([], [("old", "k0")])
    assert (ix.stats("old").objects, ix.stats("old").size) == (4, 16)
