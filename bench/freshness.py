"""Freshness: how long after a put its rows can be queried, on the embedded platform.

One single-file event at a time, so each latency is the path's own and not queueing behind a
neighbour. A random pause between events spreads the puts over the sensor's tick phase, which
otherwise locks in step with the event cycle and biases the percentiles.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import nats

from bench.embedded import RunningPlatform
from bench.results import Metric, Result, median, percentile

TABLE = "delta.default.fresh"
ROWS_PER_EVENT = 100


def _csv(i: int) -> bytes:
    start = i * ROWS_PER_EVENT
    lines = ["id,amount,name"]
    lines += [f"{n},{n * 1.5},fresh {n}" for n in range(start, start + ROWS_PER_EVENT)]
    return ("\n".join(lines) + "\n").encode()


def nats_latencies(url: str, count: int) -> list[float]:
    """JetStream publish (acked) -> delivery to a subscriber, in seconds, on the same server."""

    async def measure() -> list[float]:
        nc = await nats.connect(url)
        js = nc.jetstream()
        stream = "BENCH_LATENCY"
        await js.add_stream(name=stream, subjects=["bench.latency"])
        try:
            sub = await js.subscribe("bench.latency", ordered_consumer=True)
            out = []
            for i in range(count):
                t0 = time.perf_counter()
                await js.publish("bench.latency", str(i).encode())
                await sub.next_msg(timeout=5)
                out.append(time.perf_counter() - t0)
            await sub.unsubscribe()
            return out
        finally:
            await js.delete_stream(stream)
            await nc.close()

    return asyncio.run(measure())


def run(platform: RunningPlatform, smoke: bool) -> Result:
    events = 1 if smoke else 50
    max_pause = 0.3 if smoke else float(platform.settings.sensor_interval_seconds)
    result = Result(
        "freshness",
        "Freshness: event -> run started -> rows queryable (embedded platform)",
        smoke,
        params={
            "events": events,
            "rows_per_event": ROWS_PER_EVENT,
            "table": TABLE,
            "max_pause_between_events_s": max_pause,
            "platform_startup_s": round(platform.startup_s, 2),
            "event_time": "when the put returns (the object is complete in the bucket)",
            "run_started": "Dagster run stats startTime (run worker began executing)",
            "queryable": "a fresh embedded SqlEngine counts the file's rows on each new Delta "
            "commit (the log is polled every 20 ms)",
        },
    )
    rng = random.Random(5)
    put_at: dict[str, float] = {}
    queryable_at: dict[str, float] = {}
    timeouts = 0
    window_start = time.time()
    for i in range(events):
        key = f"fresh/e{i:04d}.csv"
        uri = f"s3://landing/{key}"
        body = _csv(i)
        platform.store.put("landing", key, body)
        t0 = time.time()
        put_at[key] = t0
        sql = f"SELECT count(*) FROM {TABLE} WHERE _source_uri = '{uri}'"
        tq = platform.wait_rows("default/fresh", sql, ROWS_PER_EVENT, timeout=120)
        if tq is None:
            timeouts += 1
        else:
            queryable_at[key] = tq
        time.sleep(rng.uniform(0, max_pause))
    window_end = time.time()

    runs = {r["tag"].get("lakewire/first_object"): r for r in platform.runs(TABLE)}
    stream_at = platform.stream_times("storage.events.landing")
    stages: dict[str, list[float]] = {
        "put -> in JetStream": [],
        "in JetStream -> run created (sensor tick)": [],
        "run created -> launched (queue)": [],
        "launched -> run started (worker start)": [],
        "run started -> run ended (ingest)": [],
        "run ended -> queryable (commit seen)": [],
    }
    to_started: list[float] = []
    to_queryable: list[float] = []
    for key, t0 in put_at.items():
        run_ = runs.get(f"landing/{key}")
        tq = queryable_at.get(key)
        ts = stream_at.get(f"landing/{key}")
        if tq is not None:
            to_queryable.append(tq - t0)
        if run_ is None:
            continue
        stats = run_["stats"]
        if stats.get("startTime"):
            to_started.append(stats["startTime"] - t0)
        points = [
            t0,
            ts.timestamp() if ts else None,
            run_["creationTime"],
            stats.get("launchTime"),
            stats.get("startTime"),
            stats.get("endTime"),
            tq,
        ]
        for (_name, values), a, b in zip(stages.items(), points, points[1:], strict=False):
            if a is not None and b is not None:
                values.append(b - a)

    ticks = sorted(
        t["timestamp"]
        for t in platform.sensor_ticks()
        if window_start - 10 <= t["timestamp"] <= window_end
    )
    intervals = [b - a for a, b in itertools.pairwise(ticks)]
    tick = median(intervals)
    nats_lat = nats_latencies(platform.settings.effective_nats_url, 50 if smoke else 500)
    nats_p50 = percentile(nats_lat, 50)

    for q in (50, 95, 99):
        result.add(
            Metric(
                f"event_to_run_started_p{q}",
                percentile(to_started, q),
                "s",
                tick,
                "sensor tick interval (median)",
            )
        )
    for q in (50, 95, 99):
        result.add(
            Metric(
                f"event_to_queryable_p{q}",
                percentile(to_queryable, q),
                "s",
                percentile(nats_lat, q),
                f"NATS JetStream publish->receive p{q}",
            )
        )
    result.add(
        Metric("nats_publish_to_receive_p50", nats_p50, "s"),
        Metric("sensor_tick_interval_median", tick, "s", note=f"{len(intervals)} intervals"),
        Metric("events_measured", float(len(to_queryable)), "events"),
        Metric("events_timed_out", float(timeouts), "events"),
        Metric("runs_launched", float(len(runs)), "runs"),
    )
    for name, values in stages.items():
        result.add(
            Metric(f"stage_p50: {name}", median(values), "s", note=f"p95 {percentile(values, 95)}")
        )
    result.extra["stages_p50_s"] = {k: median(v) for k, v in stages.items()}
    result.extra["stages_p95_s"] = {k: percentile(v, 95) for k, v in stages.items()}
    result.extra["event_to_queryable_s"] = [round(v, 3) for v in to_queryable]
    slowest = max(stages.items(), key=lambda kv: median(kv[1]) or 0.0)
    result.notes.append(f"slowest stage by p50: {slowest[0]} ({median(slowest[1]) or 0:.2f} s)")
    return result
