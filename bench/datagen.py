"""Synthetic CSV input for the ingestion benchmarks, like an orders export: ~64 bytes a row.

Generated with polars in 1M-row chunks so a 2 GB file takes seconds, not minutes, and the
generator itself never holds more than one chunk.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

CHUNK_ROWS = 1_000_000


def _chunk(start: int, rows: int) -> pl.DataFrame:
    ids = pl.int_range(start, start + rows, eager=True, dtype=pl.Int64)
    return pl.DataFrame({"id": ids}).with_columns(
        event_time=(pl.datetime(2026, 1, 1) + pl.duration(seconds=pl.col("id") * 7)).dt.strftime(
            "%Y-%m-%dT%H:%M:%S"
        ),
        customer=pl.format("cust_{}", (pl.col("id") * 7919 % 1_000_000).cast(pl.String)),
        country=pl.lit(["DE", "FR", "US", "JP", "BR", "IN", "NL"]).list.get(pl.col("id") % 7),
        amount=((pl.col("id") * 104729) % 1_000_000) / 100.0,
        quantity=pl.col("id") % 17 + 1,
        note=pl.format("note {}", pl.col("id") % 100_000),
    )


def write_csv(path: Path, rows: int | None = None, min_bytes: int | None = None) -> int:
    """Write ``rows`` rows, or 1M-row chunks until the file reaches ``min_bytes``; returns rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    # Small targets (smoke runs) use small chunks so they do not overshoot by a whole chunk.
    chunk = CHUNK_ROWS if min_bytes is None else max(10_000, min(CHUNK_ROWS, min_bytes // 640))
    with path.open("wb") as fh:
        while True:
            if rows is not None and written >= rows:
                break
            if min_bytes is not None and rows is None and fh.tell() >= min_bytes:
                break
            n = chunk if rows is None else min(chunk, rows - written)
            _chunk(written, n).write_csv(fh, include_header=written == 0)
            written += n
    return written


def frame(rows: int) -> pl.DataFrame:
    """The same data as a frame (for the SQL benchmark, which needs no CSV)."""
    return pl.concat(
        [_chunk(s, min(CHUNK_ROWS, rows - s)) for s in range(0, rows, CHUNK_ROWS)], rechunk=False
    )
