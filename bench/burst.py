"""Burst: many small objects put as fast as possible, until every row is queryable.

The point is exactly-once under load: each object carries one row with a unique id, so after
the burst ``count(*)`` and ``count(DISTINCT id)`` tell lost and doubled rows apart.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from bench.embedded import RunningPlatform
from bench.results import Metric, Result

TABLE = "delta.default.burst"
ACTIVE = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")


def run(platform: RunningPlatform, smoke: bool) -> Result:
    objects = 10 if smoke else 10_000
    timeout = 120.0 if smoke else 900.0
    result = Result(
        "burst",
        f"Burst: {objects:,} small objects -> every row queryable (embedded platform)",
        smoke,
        params={
            "objects": objects,
            "rows_per_object": 1,
            "put_threads": 8,
            "table": TABLE,
            "batch_max_objects": platform.settings.batch_max_objects,
            "timeout_s": timeout,
        },
    )

    def put(i: int) -> None:
        body = f"id,amount,name\n{i},{i * 1.5},burst {i}\n".encode()
        platform.store.put("landing", f"burst/b{i:06d}.csv", body)

    t0 = time.time()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(objects)))
    put_s = time.time() - t0
    done_at = platform.wait_rows(
        "default/burst", f"SELECT count(DISTINCT id) FROM {TABLE}", objects, timeout
    )
    all_queryable = done_at - t0 if done_at is not None else None
    # Let every run finish so a late duplicate commit would be counted too.
    deadline = time.time() + 120
    runs = platform.runs(TABLE)
    while any(r["status"] in ACTIVE for r in runs) and time.time() < deadline:
        time.sleep(1)
        runs = platform.runs(TABLE)
    rows = platform.count(f"SELECT count(*) FROM {TABLE}")
    distinct = platform.count(f"SELECT count(DISTINCT id) FROM {TABLE}")
    statuses: dict[str, int] = {}
    for r in runs:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1

    put_rate = objects / put_s
    result.add(
        Metric("all_queryable_s", all_queryable, "s", put_s, "time to put every object"),
        Metric(
            "objects_per_s",
            objects / all_queryable if all_queryable else None,
            "objects/s",
            put_rate,
            "put rate into the bucket",
        ),
        Metric("runs_launched", float(len(runs)), "runs"),
        Metric("rows_lost", float(objects - distinct), "rows"),
        Metric("rows_doubled", float(rows - distinct), "rows"),
    )
    result.extra["run_statuses"] = statuses
    if all_queryable is None:
        result.notes.append(f"not every row was queryable within {timeout:.0f} s")
    return result
