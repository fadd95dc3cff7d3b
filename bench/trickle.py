"""Trickle: objects arriving steadily from many clients, as they do in practice.

Eight clients put 1,000 one-row objects over 60 s (the smoke: 16 over 2 s). What matters is how
long after the last put every row is queryable: a pipeline that plans runs per sensor tick
queues work for as long as files keep coming, one that drains per table keeps up. Runs waiting
at once are sampled from Dagster's run storage throughout.
"""

from __future__ import annotations

import threading
import time

from bench.embedded import RunningPlatform
from bench.results import Metric, Result

TABLE = "delta.default.trickle"
ACTIVE = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")
WAITING = ("QUEUED", "NOT_STARTED")
CLIENTS = 8


def run(platform: RunningPlatform, smoke: bool) -> Result:
    objects, window = (16, 2.0) if smoke else (1_000, 60.0)
    timeout = 120.0 if smoke else 600.0
    result = Result(
        "trickle",
        f"Trickle: {objects:,} objects from {CLIENTS} clients over {window:.0f} s "
        "-> every row queryable (embedded platform)",
        smoke,
        params={"objects": objects, "clients": CLIENTS, "window_s": window, "table": TABLE},
    )
    per_client = objects // CLIENTS
    stop = threading.Event()
    most_waiting = [0]

    def sample() -> None:
        while not stop.is_set():
            runs = platform.runs(TABLE)
            most_waiting[0] = max(most_waiting[0], sum(r["status"] in WAITING for r in runs))
            stop.wait(0.5)

    def client(n: int) -> None:
        for i in range(per_client):
            row = n * per_client + i
            body = f"id,amount,name\n{row},{row * 1.5},trickle {row}\n".encode()
            platform.store.put("landing", f"trickle/c{n}-{i:05d}.csv", body)
            time.sleep(window / per_client)  # the arrival shape: steady, not a burst

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.time()
    clients = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    last_put = time.time()
    expected = per_client * CLIENTS
    done_at = platform.wait_rows(
        "default/trickle", f"SELECT count(DISTINCT id) FROM {TABLE}", expected, timeout
    )
    deadline = time.time() + 120
    runs = platform.runs(TABLE)
    while any(r["status"] in ACTIVE for r in runs) and time.time() < deadline:
        time.sleep(1)
        runs = platform.runs(TABLE)
    stop.set()
    sampler.join(5)
    rows = platform.count(f"SELECT count(*) FROM {TABLE}")
    distinct = platform.count(f"SELECT count(DISTINCT id) FROM {TABLE}")
    arrival = last_put - t0
    result.add(
        Metric(
            "queryable_after_last_put_s",
            done_at - last_put if done_at is not None else None,
            "s",
            arrival,
            "arrival window (first to last put)",
        ),
        Metric("runs_launched", float(len(runs)), "runs"),
        Metric("most_runs_waiting", float(most_waiting[0]), "runs"),
        Metric("rows_lost", float(expected - distinct), "rows"),
        Metric("rows_doubled", float(rows - distinct), "rows"),
    )
    if done_at is None:
        result.notes.append(f"not every row was queryable within {timeout:.0f} s")
    return result
