"""Ingestion throughput: Lakewire's ``ingest_batch`` vs raw polars + table writer, in-process.

Both sides read the same landed bytes in the same process; the raw side does only what any
script would (``pl.read_csv`` then ``write_deltalake`` or a pyiceberg append), so the ratio is
the cost of what Lakewire adds: the ledger lookup, the etag check, schema fitting, the lineage
columns and the ledger entry in the commit. Repetitions alternate sides, each into a new table,
after one unrecorded warm-up round.
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
from deltalake import write_deltalake

from bench.datagen import write_csv
from bench.landing import fresh_lake, landing_path, source_for
from bench.results import Metric, Result, median
from lakehouse.formats import CsvOptions, polars_csv_kwargs
from lakehouse.iceberg import catalog
from lakehouse.tables import TABLE_FORMATS, TableRef, delta_table_uri
from pipelines.ingestion import ingest_batch

KEY = "orders/orders.csv"


def run(work: Path, smoke: bool) -> Result:
    rows = 20_000 if smoke else 1_000_000
    reps = 1 if smoke else 3
    settings, store = fresh_lake(work / "data")
    path = landing_path(settings, store, KEY)
    write_csv(path, rows=rows)
    size_mb = path.stat().st_size / 1e6
    src = source_for(settings, store, KEY)
    cat = catalog(settings, store)
    cat.create_namespace_if_not_exists("raw")

    times: dict[str, list[float]] = {"delta": [], "delta_raw": [], "iceberg": [], "iceberg_raw": []}
    # Round 0 is a warm-up (lazy imports, first-use caches) and is not recorded.
    for rep in range(reps + 1):
        for fmt in TABLE_FORMATS:
            ref = TableRef(fmt, "default", f"lw_{fmt}_{rep}")
            t0 = time.perf_counter()
            report = ingest_batch(settings, store, ref, [src], f"bench-{rep}")
            lw_s = time.perf_counter() - t0
            if report.rows != rows:
                raise RuntimeError(f"{ref.qualified}: ingested {report.rows} of {rows} rows")

            t0 = time.perf_counter()
            # The same read options Lakewire uses (DECISIONS: null tokens, date parsing).
            df = pl.read_csv(path, try_parse_dates=True, **polars_csv_kwargs(CsvOptions()))
            if fmt == "delta":
                uri = delta_table_uri(settings, store, TableRef("delta", "raw", f"raw_{rep}"))
                write_deltalake(uri, df.to_arrow(), mode="append")
            else:
                arrow = df.to_arrow()
                table = cat.create_table(("raw", f"raw_{rep}"), schema=arrow.schema)
                table.append(arrow)
            if rep > 0:
                times[fmt].append(lw_s)
                times[f"{fmt}_raw"].append(time.perf_counter() - t0)

    result = Result(
        "ingest_throughput",
        f"Ingestion throughput: {rows:,}-row CSV ({size_mb:.0f} MB), Lakewire vs raw, in-process",
        smoke,
        params={
            "rows": rows,
            "csv_mb": round(size_mb, 1),
            "repetitions": reps,
            "warmup_rounds": 1,
            "entry_point": "pipelines.ingestion.ingest_batch(settings, store, ref, [src], run_id)",
            "raw_delta": "pl.read_csv (Lakewire's null tokens, date parsing) + write_deltalake",
            "raw_iceberg": "pl.read_csv + pyiceberg SqlCatalog create_table + append",
            "seconds": {k: [round(v, 3) for v in vs] for k, vs in times.items()},
        },
    )
    for fmt in TABLE_FORMATS:
        lw, raw = median(times[fmt]), median(times[f"{fmt}_raw"])
        assert lw is not None and raw is not None
        result.add(
            Metric(
                f"{fmt}_mb_per_s",
                size_mb / lw,
                "MB/s",
                size_mb / raw,
                f"raw polars read + {'deltalake write' if fmt == 'delta' else 'pyiceberg append'}",
            ),
            Metric(f"{fmt}_rows_per_s", rows / lw, "rows/s", rows / raw, "raw rows/s"),
        )
    return result
