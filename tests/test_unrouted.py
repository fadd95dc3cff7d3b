"""Objects no route takes are reported (counted per watched bucket, logged by the sensor, shown by
`lakewire status`), so a file that will never become a table is never silent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lakehouse.routes import settings_routes
from lakewire.health import lines, unrouted_objects
from pipelines.batches import unrouted
from storage_service.events import OBJECT_CREATED_PUT, OBJECT_REMOVED_DELETE, BucketEvent
from storage_service.unrouted import count_unrouted, save

ROUTES = """
routes:
  - name: per_dataset
    glob: "*/**/*.csv"
    table: "default.{dataset}"
"""


def test_watched_buckets_count_what_no_route_takes(
    pipeline_env: Callable[[str | None], Any],
) -> None:
    settings, store = pipeline_env(ROUTES)
    store.put("landing", "orders/2024.csv", b"a\n1\n")  # routed
    store.put("landing", "orders/notes.txt", b"x")  # in a dataset folder, not a CSV
    store.put("landing", "stray.csv", b"a\n1\n")  # no dataset folder
    store.put("landing", f"{settings.quarantine_prefix}orders/bad.csv", b"?")  # has its report
    store.put("lake", "default/t/_delta_log/0.json", b"{}")  # no route watches lake
    counts = count_unrouted(settings, store)
    assert set(counts) == {"landing"}
    assert counts["landing"].objects == 2
    assert sorted(counts["landing"].examples) == ["orders/notes.txt", "stray.csv"]

    # `lakewire status` reads what the storage service saved.
    assert unrouted_objects(settings) == {"objects": None, "buckets": {}}
    save(settings, counts)
    health = unrouted_objects(settings)
    assert health["objects"] == 2
    report = {
        "outbox": {"events": 0, "oldest_age_seconds": 0.0},
        "stream": {"tail": 3, "sensor_cursor": 3, "lag": 0},
        "runs": {"queued": 0, "failed_last_hour": 0, "succeeded_last_hour": 1},
        "quarantine": {"objects": 1},
        "unrouted": health,
        "disk": {"free_bytes": 1024, "total_bytes": 2048, "path": "/x"},
    }
    (line,) = [ln for ln in lines(report) if ln.startswith("Unrouted:")]
    assert "2 objects no route takes; landing: 2 (e.g." in line and "stray.csv" in line


def test_the_sensor_names_written_objects_no_route_takes(
    pipeline_env: Callable[[str | None], Any],
) -> None:
    settings, _ = pipeline_env(ROUTES)

    def ev(key: str, name: str = OBJECT_CREATED_PUT) -> BucketEvent:
        return BucketEvent(name, "landing", key, 1, "e", "01", datetime.now(UTC), stream_seq=1)

    events = [
        ev("orders/a.csv"),
        ev("stray.csv"),
        ev("gone.csv", OBJECT_REMOVED_DELETE),  # a removal adds nothing to any table
        ev(f"{settings.quarantine_prefix}orders/b.csv"),
    ]
    assert unrouted(settings, settings_routes(settings), events) == ["landing/stray.csv"]
