"""Health beyond "running", for ``lakewire status``: each part answered on its own, quickly.

- the outbox: events waiting for a JetStream ack and the age of the oldest (read-only from the
  storage service's ``outbox.db``, so it answers with the service down too);
- the stream: its tail, the ingestion sensor's cursor (Dagster GraphQL) and the lag between;
- runs: queued now, failed and succeeded in the last hour (Dagster GraphQL);
- quarantined objects: the ``.reason.json`` files under the quarantine prefix in the index;
- disk: free and total bytes under the data dir, and under the local store's objects.

A part that cannot be reached says so under ``error`` instead of failing the whole report.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakehouse.settings import Settings
from storage_service.metrics import event_age_seconds
from storage_service.pipeline_state import graphql, sensor_cursor, stream_tail
from storage_service.unrouted import load as load_unrouted

HOUR = 3600.0

RUNS_QUERY = """query ($since: Float!) {
  queued: runsOrError(filter: {statuses: [QUEUED]}) { ... on Runs { count } }
  failed: runsOrError(filter: {statuses: [FAILURE], updatedAfter: $since}) { ... on Runs { count } }
  succeeded: runsOrError(filter: {statuses: [SUCCESS], updatedAfter: $since}) {
    ... on Runs { count } }
}"""


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)


def outbox_health(settings: Settings) -> dict[str, Any]:
    path = settings.state_dir / "outbox.db"
    if not path.exists():
        return {"events": 0, "oldest_age_seconds": 0.0}
    try:
        with _read_only(path) as db:
            (count,) = db.execute("SELECT count(*) FROM outbox").fetchone()
            oldest = db.execute("SELECT payload FROM outbox ORDER BY id LIMIT 1").fetchone()
    except sqlite3.Error as exc:
        return {"error": f"outbox unreadable: {exc}"}
    age = event_age_seconds(oldest[0], datetime.now(UTC)) if oldest else 0.0
    return {"events": count, "oldest_age_seconds": round(age, 1)}


def quarantined_objects(settings: Settings) -> dict[str, Any]:
    path = settings.state_dir / "index.db"
    if not path.exists():
        return {"objects": 0}
    prefix = settings.quarantine_prefix
    try:
        with _read_only(path) as db:
            (count,) = db.execute(
                "SELECT count(*) FROM objects WHERE substr(key, 1, ?) = ?"
                " AND key LIKE '%.reason.json'",
                (len(prefix), prefix),
            ).fetchone()
    except sqlite3.Error as exc:
        return {"error": f"index unreadable: {exc}"}
    return {"objects": count}


def _usage(path: Path) -> dict[str, Any]:
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    return {
        "path": str(path),
        "device": path.stat().st_dev,
        "free_bytes": usage.free,
        "total_bytes": usage.total,
        "free_percent": round(100.0 * usage.free / usage.total, 1) if usage.total else None,
    }


def disk_health(settings: Settings) -> dict[str, Any]:
    """Free space under the data dir, and under the local store's objects (``storage``): they
    may be a disk of their own, and a full object disk refuses writes (507) while the rest of
    the platform runs on (``None`` on the S3 backend, whose space is the store's business)."""
    out = _usage(settings.resolved_data_dir)
    out["storage"] = _usage(settings.storage_root) if settings.storage_backend == "local" else None
    return out


def stream_health(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {"tail": None, "sensor_cursor": None, "lag": None}
    errors = []
    try:
        out["tail"] = stream_tail(settings)
    except Exception as exc:
        errors.append(f"NATS unreachable at {settings.effective_nats_url}: {exc or type(exc)}")
    try:
        out["sensor_cursor"] = sensor_cursor(settings)
    except Exception as exc:
        errors.append(f"Dagster unreachable at {settings.dagster_url}: {exc or type(exc)}")
    if out["tail"] is not None and out["sensor_cursor"] is not None:
        out["lag"] = max(0, out["tail"] - out["sensor_cursor"])
    if errors:
        out["error"] = "; ".join(errors)
    return out


def runs_health(settings: Settings, now: float | None = None) -> dict[str, Any]:
    since = (now or time.time()) - HOUR
    try:
        data = graphql(settings, RUNS_QUERY, {"since": since})
        return {
            "queued": data["queued"]["count"],
            "failed_last_hour": data["failed"]["count"],
            "succeeded_last_hour": data["succeeded"]["count"],
        }
    except Exception as exc:
        return {"error": f"Dagster unreachable at {settings.dagster_url}: {exc or type(exc)}"}


def unrouted_objects(settings: Settings) -> dict[str, Any]:
    """As the storage service last counted them (it lists the watched buckets in the background)."""
    counts = load_unrouted(settings)
    if counts is None:
        return {"objects": None, "buckets": {}}
    return {
        "objects": sum(u.objects for u in counts.values()),
        "buckets": {b: asdict(u) for b, u in counts.items() if u.objects},
    }


def collect(settings: Settings) -> dict[str, Any]:
    return {
        "outbox": outbox_health(settings),
        "stream": stream_health(settings),
        "runs": runs_health(settings),
        "quarantine": quarantined_objects(settings),
        "unrouted": unrouted_objects(settings),
        "disk": disk_health(settings),
    }


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def lines(health: dict[str, Any]) -> list[str]:
    """The health block of the text report, one line per part."""
    o, s, r, q, d = (health[k] for k in ("outbox", "stream", "runs", "quarantine", "disk"))
    outbox = o.get("error") or f"{o['events']} events waiting (oldest {o['oldest_age_seconds']} s)"
    if s["tail"] is not None or s["sensor_cursor"] is not None:
        stream = f"tail {s['tail'] if s['tail'] is not None else '?'}, sensor cursor " + (
            f"{s['sensor_cursor'] if s['sensor_cursor'] is not None else '?'}, lag "
            f"{s['lag'] if s['lag'] is not None else '?'}"
        )
        stream += f" ({s['error']})" if s.get("error") else ""
    else:
        stream = s.get("error") or "no stream yet"
    runs = r.get("error") or (
        f"{r['queued']} queued, {r['failed_last_hour']} failed and "
        f"{r['succeeded_last_hour']} succeeded in the last hour"
    )
    quarantine = q.get("error") or f"{q['objects']} objects"
    u = health.get("unrouted", {"objects": None, "buckets": {}})
    if u["objects"] is None:
        unrouted = "not counted yet"
    else:
        unrouted = f"{u['objects']} objects no route takes" + "".join(
            f"; {b}: {c['objects']} (e.g. {', '.join(c['examples'][:3])})"
            for b, c in u["buckets"].items()
        )
    disk = f"{_size(d['free_bytes'])} free of {_size(d['total_bytes'])} under {d['path']}"
    store = d.get("storage")
    if store and store["device"] != d["device"]:  # the objects' own disk
        disk += (
            f"; objects: {_size(store['free_bytes'])} free of {_size(store['total_bytes'])}"
            f" under {store['path']}"
        )
    return [
        f"Outbox:              {outbox}",
        f"Stream:              {stream}",
        f"Runs:                {runs}",
        f"Quarantined:         {quarantine}",
        f"Unrouted:            {unrouted}",
        f"Disk:                {disk}",
    ]
