"""The fault harness (issues 16 and 15): clients that keep putting objects into the embedded
platform while a part of it is broken on purpose, the supervisor's view of its services, and an
accounting step that compares every acknowledged object with the table it was routed to.

Sizes come from ``LAKEWIRE_FAULT_SIZE``: ``small`` (the default, what ``make test`` runs) or
``full`` (``make reliability``, whose figures ``bench/reliability_page.py`` writes into
``docs/reliability.md``). Tests assert only lost = 0, doubled = 0 and generous deadlines; the
recovery times are recorded, never asserted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.results import machine
from tests.helpers import BIN, Platform, csv_bytes, wait_for

RESTART_DEADLINE = 60.0
LAND_DEADLINE = 240.0


@dataclass(frozen=True)
class Sizes:
    """How hard each fault pushes: clients, object sizes, how long an outage lasts."""

    name: str
    clients: int
    outage_seconds: float
    # Objects the clients must have acknowledged before a fault, and after it, so that the
    # fault lands in the middle of a steady stream.
    objects_before: int
    objects_after: int
    # Rows per good object, cycled through: mixed sizes, one of them several MB.
    rows: tuple[int, ...]
    bad_every: int  # every n-th object of a client is empty (quarantined as bad)
    pause_seconds: float  # between one client's puts
    # Put a probe after each fault and time it to queryable (the docs' recovery column); the
    # small sizes leave it out to stay within `make test`'s budget: the objects acknowledged
    # after the fault, all accounted for, show the event path works again all the same.
    measure_recovery: bool


SIZES = {
    "small": Sizes("small", 2, 5.0, 4, 4, (5, 40, 5, 400), 5, 0.5, False),
    "full": Sizes("full", 4, 30.0, 40, 40, (5, 40, 5, 400, 5, 100_000), 11, 0.25, True),
}


def sizes() -> Sizes:
    name = os.environ.get("LAKEWIRE_FAULT_SIZE", "small")
    if name not in SIZES:
        raise ValueError(f"LAKEWIRE_FAULT_SIZE={name!r}: expected one of {sorted(SIZES)}")
    return SIZES[name]


# -- the supervisor's view --------------------------------------------------------------------
def status_json(platform: Platform, **env: str) -> dict[str, Any]:
    proc = subprocess.run(
        [str(BIN / "lakewire"), "status", "--json"],
        env={**platform.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode in (0, 3), proc.stderr
    return json.loads(proc.stdout)


def services(platform: Platform) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in status_json(platform)["services"]}


def pids(platform: Platform) -> dict[str, int]:
    return {n: s["pid"] for n, s in services(platform).items()}


def supervisorctl(platform: Platform, *args: str) -> str:
    """Planned outages go through the supervisor's own stop/start (DECISIONS: 15, 16)."""
    return platform.supervisorctl(*args)


def api_key(platform: Platform) -> str:
    return platform.lakewire("status", "--show-key").stdout.split("API key: ")[1].split()[0]


def ready(platform: Platform, name: str) -> bool:
    if name == "nats-server":
        port = int(platform.env["LAKEWIRE_NATS_PORT"])
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
        except OSError:
            return False
        return True
    if name == "storage-service":
        try:
            return httpx.get(f"{platform.storage_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
    return True  # the daemon: RUNNING under supervisord (past its start-up seconds)


def wait_running(platform: Platform, name: str, old_pid: int | None = None) -> None:
    def back() -> bool:
        s = services(platform)[name]
        return s["state"] == "RUNNING" and s["pid"] != old_pid and ready(platform, name)

    wait_for(back, RESTART_DEADLINE, f"{name} running again", interval=0.1)


def kill_and_wait(platform: Platform, name: str) -> float:
    """SIGKILL a service and wait for supervisord to bring it back; the seconds that took."""
    old = services(platform)[name]
    os.kill(old["pid"], signal.SIGKILL)
    t0 = time.monotonic()
    wait_running(platform, name, old["pid"])
    took = time.monotonic() - t0
    now = services(platform)[name]
    assert now["restarts"] >= old["restarts"] + 1, now
    assert "SIGKILL" in (now["last_exit"] or ""), now
    return took


# -- a small data disk ------------------------------------------------------------------------
# The object disk the module's platform runs on (``<data dir>/storage``): a tmpfs of this size,
# so the disk-full fault fills a real filesystem without touching the machine's own disk.
# The state (outbox, index), NATS and Dagster stay on the data dir's disk, as with a separate
# data volume. Full sizes write a few hundred MB across the suite.
DISK_BYTES = {"small": 256 * 1024**2, "full": 4 * 1024**3}


def mount_small_disk(path: Path) -> bool:
    """Mount a tmpfs of ``DISK_BYTES`` on ``path`` (root only); False where it is refused."""
    path.mkdir(parents=True, exist_ok=True)
    size = DISK_BYTES[sizes().name]
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "lakewire-faults", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0


def unmount(path: Path) -> None:
    subprocess.run(["umount", "--lazy", str(path)], capture_output=True, check=False)


def fill_disk(filler: Path) -> int:
    """Take every free byte of ``filler``'s filesystem (a hidden file no store lists); the
    bytes it holds."""
    with filler.open("wb", buffering=0) as fh:
        free = os.statvfs(filler).f_bavail * os.statvfs(filler).f_frsize
        if free > 0:
            os.posix_fallocate(fh.fileno(), 0, free)
        chunk = b"\0" * 65536
        with contextlib.suppress(OSError):  # whatever allocation left, until ENOSPC
            while True:
                fh.write(chunk)
    return filler.stat().st_size


# -- clients ----------------------------------------------------------------------------------
class Clients:
    """A few clients putting CSVs of mixed sizes (and now and then an empty, bad one) through
    the API under ``landing/<dataset>/`` until told to stop, retrying a put until it is
    acknowledged (201). Only acknowledged keys are expected in the table."""

    def __init__(self, platform: Platform, dataset: str, size: Sizes | None = None) -> None:
        self.platform = platform
        self.dataset = dataset
        self.size = size or sizes()
        self.key = api_key(platform)
        self.acked: dict[str, int] = {}  # key -> rows (0: a bad object)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True)
            for i in range(self.size.clients)
        ]

    def _body(self, n: int, i: int) -> tuple[bytes, int]:
        if i % self.size.bad_every == self.size.bad_every - 1:
            return b"", 0
        rows = self.size.rows[(n + i) % len(self.size.rows)]
        return csv_bytes(rows, start=(n * 100_000 + i) * 1_000_000), rows

    def _run(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        i = 0
        while not self.stop.is_set():
            key = f"{self.dataset}/c{n}-{i:05d}.csv"
            body, rows = self._body(n, i)
            while not self.stop.is_set():
                try:
                    resp = httpx.put(
                        f"{self.platform.storage_url}/api/buckets/landing/objects/{key}",
                        content=body,
                        headers=headers,
                        timeout=30,
                    )
                except httpx.HTTPError:
                    time.sleep(0.3)
                    continue
                if resp.status_code == 201:
                    with self.lock:
                        self.acked[key] = rows
                    break
                time.sleep(0.3)
            i += 1
            self.stop.wait(self.size.pause_seconds)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def wait_more(self, n: int, timeout: float = 120.0) -> None:
        """Wait until ``n`` more objects were acknowledged (the stream is flowing)."""
        target = self.count() + n
        wait_for(lambda: self.count() >= target, timeout, f"{target} acknowledged puts", 0.1)

    def __enter__(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


# -- accounting -------------------------------------------------------------------------------
@dataclass
class Account:
    fault: str
    objects: int
    lost: int
    doubled: int
    quarantined: int
    recovery_s: float | None
    problems: dict[str, Any] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.doubled == 0 and not self.problems


def table_counts(platform: Platform, dataset: str) -> dict[str, int]:
    """Rows per source object in ``delta.default.<dataset>``, read from the Delta table's files
    in-process (a `lakewire sql` process per poll cost seconds on a loaded machine)."""
    import polars as pl

    from lakehouse.delta import open_table

    path = platform.data_dir / "storage" / "lake" / "default" / dataset
    # A log folder with no commit yet (the first commit failed, e.g. on a full disk) is no
    # table, as every reader of the platform sees it.
    if not (path / "_delta_log").is_dir() or open_table(str(path), {}) is None:
        return {}
    frame = pl.read_delta(str(path), columns=["_source_uri"])
    return {
        uri.removeprefix("s3://landing/"): n
        for uri, n in frame.group_by("_source_uri").len().iter_rows()
    }


def _quarantined(platform: Platform, dataset: str) -> set[str]:
    from lakehouse.objectstore import open_object_store
    from lakehouse.quarantine import list_quarantined
    from lakehouse.settings import Settings

    settings = Settings(data_dir=platform.data_dir)
    store = open_object_store(settings)
    return {
        r.key for r in list_quarantined(settings, store, "landing") if r.key.startswith(dataset)
    }


def account(
    platform: Platform,
    fault: str,
    dataset: str,
    acked: dict[str, int],
    recovery_s: float | None,
    unacked: frozenset[str] = frozenset(),
) -> Account:
    """Wait until every acknowledged object is in ``delta.default.<dataset>`` (or quarantined,
    if bad) and runs have settled, then count: an object is lost when it has no rows, doubled
    when it has more than it holds. A put that was never acknowledged may or may not have
    landed, but never twice and never partly."""
    table = f"delta.default.{dataset}"
    good = {k: n for k, n in acked.items() if n}
    bad = {k for k, n in acked.items() if not n}

    def landed() -> dict[str, int] | None:
        counts = table_counts(platform, dataset)
        if all(counts.get(k, 0) >= n for k, n in good.items()) and bad <= _quarantined(
            platform, dataset
        ):
            return counts
        return None

    with contextlib.suppress(AssertionError):  # what never landed is counted as lost below
        wait_for(landed, LAND_DEADLINE, f"{len(good)} objects in {table}", interval=2)
    wait_for(platform.settled_runs, 120, "runs to settle", 1)
    counts = table_counts(platform, dataset)
    if counts:  # the SQL engine sees what the files say
        assert platform.count(table) == sum(counts.values())
    quarantined = _quarantined(platform, dataset)
    lost = sorted(k for k in good if counts.get(k, 0) == 0)
    doubled = sorted(k for k, n in counts.items() if k in good and n > good[k])
    problems: dict[str, Any] = {}
    partial = sorted(k for k, n in counts.items() if k in good and 0 < n < good[k])
    if partial:
        problems["partial"] = partial
    strangers = sorted(k for k in counts if k not in good and k not in unacked)
    if strangers:
        problems["rows of objects never put"] = strangers
    wrongly_quarantined = sorted(quarantined - bad - set(unacked))
    if wrongly_quarantined:
        problems["quarantined but good"] = wrongly_quarantined
    if bad - quarantined:
        problems["bad but not quarantined"] = sorted(bad - quarantined)
    if lost:
        problems["lost"] = lost[:20]
    if doubled:
        problems["doubled"] = {k: counts[k] for k in doubled[:20]}
    result = Account(fault, len(acked), len(lost), len(doubled), len(quarantined), recovery_s)
    result.problems = problems
    record(result)
    return result


def probe_recovery(platform: Platform, dataset: str, since: float) -> float | None:
    """Seconds from ``since`` (the fault, or the end of a planned outage) until a probe object
    put afterwards is queryable: the whole event path works again (``None`` at sizes that do
    not measure it)."""
    if not sizes().measure_recovery:
        return None
    key = f"{dataset}_probe/probe-{time.monotonic_ns()}.csv"
    headers = {"Authorization": f"Bearer {api_key(platform)}"}

    def put() -> bool:
        try:
            resp = httpx.put(
                f"{platform.storage_url}/api/buckets/landing/objects/{key}",
                content=csv_bytes(1, start=7),
                headers=headers,
                timeout=10,
            )
        except httpx.HTTPError:
            return False
        return resp.status_code == 201

    wait_for(put, RESTART_DEADLINE, "the probe put", 0.2)
    wait_for(
        lambda: table_counts(platform, f"{dataset}_probe").get(key) == 1,
        LAND_DEADLINE,
        "the probe's row",
        0.2,
    )
    return time.monotonic() - since


# -- results ----------------------------------------------------------------------------------
RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"


def results_file() -> Path:
    """Full sizes write the figures the docs show; small ones go to the smoke directory."""
    name = "reliability.json"
    return RESULTS / name if sizes().name == "full" else RESULTS / "smoke" / name


def record(result: Account) -> None:
    path = results_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {"faults": {}}
    row = asdict(result)
    row["problems"] = {k: str(v)[:500] for k, v in result.problems.items()}
    row["size"] = sizes().name
    row["measured_at"] = datetime.now(tz=UTC).isoformat(timespec="seconds")
    data["faults"][result.fault] = row
    data["machine"] = machine()
    path.write_text(json.dumps(data, indent=2) + "\n")


@contextlib.contextmanager
def steady(clients: Clients) -> Iterator[None]:
    """Objects are flowing before the fault and keep flowing after it."""
    clients.wait_more(clients.size.objects_before)
    yield
    clients.wait_more(clients.size.objects_after, timeout=RESTART_DEADLINE * 3)
