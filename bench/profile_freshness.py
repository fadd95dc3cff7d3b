"""``python -m bench.profile_freshness``: where the freshness path spends its time, by py-spy.

Starts the embedded platform, attaches ``py-spy record --subprocesses`` to the Dagster daemon
(the sensor's code server and every run worker are its descendants), puts single-file events
one at a time, and folds the samples into a summary per process kind and per hot frame. The
summary goes to ``bench/results/profile_freshness.txt``; ``docs/performance.md`` cites it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from bench.embedded import embedded_platform
from bench.freshness import ROWS_PER_EVENT, TABLE, _csv
from bench.results import RESULTS_DIR

# A command line may itself hold ';' (multiprocessing's spawn command), so process frames are
# cut out of the stack string before it is split into frames.
PROCESS_RE = re.compile(r'process (\d+):"([^"]*)";?')
FRAME_RE = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def kind_of(chain: list[str]) -> str:
    """Name a process by its command line and its parent's (py-spy lists the whole chain)."""
    cmd = chain[-1] if chain else "?"
    parent = chain[-2] if len(chain) > 1 else ""
    if "multiprocessing.spawn" in cmd and "api grpc" in parent:
        return "run worker (spawned by the code server per run)"
    if "multiprocessing" in cmd:
        return "multiprocessing helper"
    if "api grpc" in cmd:
        return "code server (sensor evaluation, run launch)"
    if "dagster-daemon" in cmd:
        return "dagster-daemon"
    return cmd[:60]


WAITING = (
    "wait (threading.py",
    "acquire",
    "select",
    "poll",
    "sleep",
    "_recv",
    "recv_into",
    "_wait_once",
)


def summarize(raw: Path, seconds: float, events: int) -> str:
    per_kind: Counter[str] = Counter()
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    imports: dict[str, Counter[str]] = defaultdict(Counter)
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        chain = [m.group(2) for m in PROCESS_RE.finditer(stack)]
        frames = [f for f in PROCESS_RE.sub("", stack).split(";") if f]
        if not frames or any(w in frames[-1] for w in WAITING):
            continue  # a thread parked in a wait is not work
        kind = kind_of(chain)
        per_kind[kind] += count
        seen: set[str] = set()
        importing: str | None = None
        for frame in frames:
            fm = FRAME_RE.match(frame)
            if not fm:
                continue
            name = f"{fm['func']} ({_short(fm['file'])})"
            if name not in seen:
                seen.add(name)
                inclusive[kind][name] += count
            if fm["func"] == "<module>" and not fm["file"].startswith("<"):
                importing = _package(fm["file"])  # the innermost module being imported wins
        if importing is not None:
            imports[kind][importing] += count

    total = sum(per_kind.values()) or 1
    out = [
        f"py-spy --subprocesses on the dagster daemon, {events} single-file events, "
        f"{seconds:.0f} s, {total} busy samples at 100 Hz (stacks parked in a wait dropped).",
        "",
        "Samples by process kind:",
    ]
    out += [f"  {n:7d}  {100 * n / total:5.1f}%  {k}" for k, n in per_kind.most_common()]
    for kind, n in per_kind.most_common(3):
        out += ["", f"Hottest frames (inclusive) in: {kind} ({n} samples)"]
        for name, c in inclusive[kind].most_common(30):
            out.append(f"  {c:7d}  {100 * c / n:5.1f}%  {name}")
        if imports[kind]:
            imp = sum(imports[kind].values())
            out += [
                "",
                f"  Module-level code (imports; {100 * imp / n:.1f}% of this kind), by the "
                "package whose module was executing:",
            ]
            for pkg, c in imports[kind].most_common(15):
                out.append(f"  {c:7d}  {100 * c / n:5.1f}%  {pkg}")
    return "\n".join(out) + "\n"


def _short(path: str) -> str:
    return path.split("site-packages/")[-1].split("lib/python3.11/")[-1]


def _package(path: str) -> str:
    rel = path.split("site-packages/")[-1].split("lib/python3.11/")[-1]
    return rel.split("/")[0].removesuffix(".py")


def main(events: int = 8, keep_raw: Path | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="lakewire-profile-") as tmp:
        root = Path(tmp)
        with embedded_platform(root) as platform:
            daemon = platform.pids["dagster-daemon"]
            raw = root / "freshness.raw"
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(daemon),
                    "--subprocesses",
                    "--rate",
                    "100",
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            time.sleep(2)
            t0 = time.monotonic()
            for i in range(events):
                key = f"fresh/p{i:04d}.csv"
                platform.store.put("landing", key, _csv(10_000 + i))
                sql = f"SELECT count(*) FROM {TABLE} WHERE _source_uri = 's3://landing/{key}'"
                if platform.wait_rows("default/fresh", sql, ROWS_PER_EVENT, 120) is None:
                    print(f"event {i} not queryable within 120 s", file=sys.stderr)
            seconds = time.monotonic() - t0
            spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
            _, err = spy.communicate(timeout=60)
            if not raw.exists():
                raise SystemExit(f"py-spy wrote nothing: {err.decode()[-2000:]}")
            summary = summarize(raw, seconds, events)
            if keep_raw is not None:
                keep_raw.write_bytes(raw.read_bytes())
    out = RESULTS_DIR / "profile_freshness.txt"
    out.write_text(summary)
    print(summary)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 8,
        Path(sys.argv[2]) if len(sys.argv) > 2 else None,
    )
