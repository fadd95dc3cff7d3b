"""Peak RSS while ingesting one large CSV, measured in a child process per path.

Each path runs in its own interpreter so its peak (``VmHWM``) is its own: Lakewire's
``ingest_batch``, the raw streaming path (polars ``scan_csv`` batches into one Delta write, the
floor for a streaming ingestion) and an interpreter that only imports the same libraries.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench.datagen import write_csv
from bench.landing import fresh_lake, landing_path, source_for
from bench.results import Metric, Result

KEY = "big/big.csv"


def child(mode: str, data_dir: Path) -> None:
    """Entry point of the measured process; prints one JSON line."""
    import polars as pl
    import pyarrow as pa
    from deltalake import write_deltalake

    from lakehouse.tables import TableRef, delta_table_uri
    from pipelines.ingestion import ingest_batch

    settings, store = fresh_lake(data_dir)
    t0 = time.perf_counter()
    rows = 0
    if mode == "lakewire":
        src = source_for(settings, store, KEY)
        report = ingest_batch(settings, store, TableRef("delta", "default", "big"), [src], "b")
        rows = report.rows
        if not report.ingested:
            raise SystemExit(f"nothing ingested: {report}")
    elif mode == "raw_streaming":
        path = store.bucket_path(settings.landing_bucket) / KEY
        lazy = pl.scan_csv(path)
        schema = lazy.collect_schema()
        arrow = pl.DataFrame(schema=schema).to_arrow().schema
        counter = [0]

        def batches() -> Iterator[pa.RecordBatch]:
            for df in lazy.collect_batches(chunk_size=settings.ingest_stream_chunk_rows):
                counter[0] += df.height
                yield from df.to_arrow().cast(arrow).to_batches()

        uri = delta_table_uri(settings, store, TableRef("delta", "default", "raw"))
        write_deltalake(uri, pa.RecordBatchReader.from_batches(arrow, batches()), mode="append")
        rows = counter[0]
    seconds = time.perf_counter() - t0
    print(json.dumps({"peak_rss_mb": peak_rss_kb() / 1024, "seconds": seconds, "rows": rows}))


def peak_rss_kb() -> int:
    """``VmHWM``: the high-water RSS of this process's own address space.

    Not ``ru_maxrss``: Linux carries the parent's RSS at fork into the child's ``ru_maxrss``,
    so a child of a big parent reports the parent's size; ``exec`` starts a fresh address
    space and ``VmHWM`` with it.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _measure(mode: str, data_dir: Path) -> dict[str, float]:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from bench.peak_rss import child; child({mode!r}, {str(data_dir)!r})",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} child failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(work: Path, smoke: bool) -> Result:
    target = 20 * 1024**2 if smoke else 2 * 1024**3
    data_dir = work / "data"
    settings, store = fresh_lake(data_dir)
    path = landing_path(settings, store, KEY)
    t0 = time.perf_counter()
    rows = write_csv(path, min_bytes=target)
    gen_s = time.perf_counter() - t0
    size = path.stat().st_size
    # Smoke files are below the streaming threshold; lower it so smoke runs the same path.
    env_threshold = None
    if smoke:
        env_threshold = str(size // 2)
    lake = _measure_env("lakewire", data_dir, env_threshold)
    raw = _measure_env("raw_streaming", data_dir, env_threshold)
    idle = _measure_env("imports_only", data_dir, env_threshold)
    result = Result(
        "peak_rss",
        f"Peak RSS while ingesting a {size / 1024**3:.2f} GiB CSV (child process per path)",
        smoke,
        params={
            "csv_bytes": size,
            "csv_rows": rows,
            "generate_s": round(gen_s, 1),
            "stream_threshold_bytes": int(env_threshold)
            if env_threshold
            else settings.ingest_stream_threshold_bytes,
            "chunk_rows": settings.ingest_stream_chunk_rows,
        },
    )
    result.add(
        Metric(
            "lakewire_peak_rss_mb",
            lake["peak_rss_mb"],
            "MiB",
            raw["peak_rss_mb"],
            "raw streaming (polars scan_csv batches -> one Delta write)",
        ),
        Metric(
            "imports_only_rss_mb", idle["peak_rss_mb"], "MiB", note="interpreter + the same imports"
        ),
        Metric(
            "lakewire_mb_per_s",
            size / 1e6 / lake["seconds"],
            "MB/s",
            size / 1e6 / raw["seconds"],
            "raw streaming MB/s",
        ),
        Metric("lakewire_rows", float(lake["rows"]), "rows", float(rows), "rows in the CSV"),
    )
    return result


def _measure_env(mode: str, data_dir: Path, threshold: str | None) -> dict[str, float]:
    import os

    if threshold is None:
        return _measure(mode, data_dir)
    old = os.environ.get("LAKEWIRE_INGEST_STREAM_THRESHOLD_BYTES")
    os.environ["LAKEWIRE_INGEST_STREAM_THRESHOLD_BYTES"] = threshold
    try:
        return _measure(mode, data_dir)
    finally:
        if old is None:
            os.environ.pop("LAKEWIRE_INGEST_STREAM_THRESHOLD_BYTES")
        else:
            os.environ["LAKEWIRE_INGEST_STREAM_THRESHOLD_BYTES"] = old
