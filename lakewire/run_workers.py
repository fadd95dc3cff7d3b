"""Warm run workers: a process that has imported Dagster and the pipelines forks each run worker.

Dagster's code server starts every run worker as a fresh interpreter (``multiprocessing``'s
spawn), which spends most of a small ingestion run importing Dagster, polars, delta-rs and
pyiceberg again: 1.6 s of a 4.6 s event-to-rows p50 (``docs/performance.md``). This server
imports them once and forks a child per run; the child runs exactly what the code server's
worker runs, ``dagster api execute_run`` with the same arguments, so the run's events, logs,
cancellation thread and the worker-pid engine event the health check reads are Dagster's own.

The code location itself (``pipelines.definitions``: the routes and tables it reads when it
loads) is left out of the warm imports, so each run loads the current definitions, as a fresh
worker would; only library code is shared. Code installed while the platform runs reaches run
workers after ``lakewire down`` and ``up``, as it reaches every other service. The server stays
single-threaded so forking is safe.

Protocol (a Unix socket in the data dir): the launcher sends one JSON line
``{"execute_run_args": "<serialized ExecuteRunArgs>"}`` and reads ``{"pid": N}`` or
``{"error": "..."}``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import random
import signal
import socket
import sys
import threading
from pathlib import Path

from lakehouse import jsonlogs
from lakehouse.settings import Settings

log = logging.getLogger("lakewire.run_workers")  # also when run as __main__

# Libraries every ingestion run imports; not ``pipelines.definitions`` (see the module docstring).
WARM_MODULES = (
    "dagster",
    "dagster._cli.api",
    "polars",
    "pyarrow",
    "deltalake",
    "pyiceberg.catalog.sql",
    "lakehouse.delta",
    "lakehouse.iceberg",
    "pipelines.ingestion",
    "pipelines.jobs",
    "pipelines.assets",
    "pipelines.lifecycle",
    "pipelines.maintenance",
    "pipelines.sensors",
    "pipelines.resources",
)
CONNECT_TIMEOUT_SECONDS = 2.0
# Once the request is sent the worker may be forking: the launcher waits this long for the pid
# and, without one, fails the launch rather than starting a second worker for the run.
REPLY_TIMEOUT_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 10.0
LINE_LIMIT = 16 * 1024 * 1024


def worker_socket(settings: Settings) -> Path:
    """Where the embedded platform's server listens (the launcher's ``worker_socket``)."""
    return settings.state_dir / "run-workers.sock"


def server_ready(path: Path) -> bool:
    """Whether a server accepts connections at ``path`` (the supervisor's readiness check)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(CONNECT_TIMEOUT_SECONDS)
            conn.connect(str(path))
    except OSError:
        return False
    return True


class WorkerServerUnavailable(RuntimeError):
    """The warm worker server did not take the run; the launcher falls back to a cold worker."""


class WorkerLaunchUnknown(RuntimeError):
    """The request reached the server but its answer did not come back: the launch fails."""


def request_worker(socket_path: Path, execute_run_args: str) -> int:
    """Ask the server at ``socket_path`` to fork a run worker; returns the worker's pid.

    ``WorkerServerUnavailable`` means no request reached the server (nothing was forked, a cold
    worker may take the run); ``WorkerLaunchUnknown`` means the request was sent but no pid
    came back, so a worker may be running it and no second one must be started.
    """
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with conn:
        try:
            conn.settimeout(CONNECT_TIMEOUT_SECONDS)
            conn.connect(str(socket_path))
        except OSError as exc:
            raise WorkerServerUnavailable(f"warm worker server at {socket_path}: {exc}") from exc
        try:
            conn.settimeout(REPLY_TIMEOUT_SECONDS)
            conn.sendall(json.dumps({"execute_run_args": execute_run_args}).encode() + b"\n")
            reply = _read_line(conn)
            answer = json.loads(reply)
        except (OSError, ValueError) as exc:
            raise WorkerLaunchUnknown(f"warm worker server at {socket_path}: {exc}") from exc
    if "pid" not in answer:  # refused before forking: nothing runs
        raise WorkerServerUnavailable(f"warm worker server: {answer.get('error', answer)}")
    return int(answer["pid"])


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > LINE_LIMIT:
            raise OSError("message too large")
    return data


def serve(socket_path: Path) -> None:
    """Import the warm modules, then fork a run worker for each request until terminated."""
    for name in WARM_MODULES:
        importlib.import_module(name)
    if threading.active_count() != 1:  # a thread in the parent would be half-copied by fork
        raise SystemExit(f"warm worker server: {threading.active_count()} threads after imports")
    # Children are reaped by the kernel: the launcher follows them by pid, not by wait status.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(socket_path))
        os.chmod(socket_path, 0o600)  # whoever can connect can run code as this user
        server.listen(128)  # probes and launches queue while a fork is under way
        log.info("warm run workers ready", extra={"socket": str(socket_path)})
        while True:
            conn, _ = server.accept()
            with conn:
                try:
                    _serve_one(server, conn)
                except OSError as exc:  # the caller went away (a readiness probe does)
                    log.info("connection dropped: %s", exc)


def _serve_one(server: socket.socket, conn: socket.socket) -> None:
    conn.settimeout(REQUEST_TIMEOUT_SECONDS)
    line = _read_line(conn)
    if not line.strip():
        return  # a readiness probe: connected and closed
    try:
        request = json.loads(line)
        args = str(request["execute_run_args"])
    except (ValueError, KeyError, TypeError) as exc:
        conn.sendall(json.dumps({"error": f"bad request: {exc}"}).encode() + b"\n")
        return
    pid = os.fork()
    if pid == 0:
        server.close()
        conn.close()
        _run_worker(args)  # never returns
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def _run_worker(execute_run_args: str) -> None:
    """The forked child: Dagster's own run worker entry point, then exit without cleanup of
    the parent's state (``os._exit``)."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the run may start and wait on processes
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        random.seed()
        from dagster._cli.api import execute_run_command
        from dagster._grpc.types import ExecuteRunArgs
        from dagster_shared.serdes import deserialize_value

        # Lines the run's own modules log (not through Dagster) name the run too.
        jsonlogs.run_id.set(deserialize_value(execute_run_args, ExecuteRunArgs).run_id)

        try:
            execute_run_command.main(
                args=[execute_run_args], prog_name="dagster api execute_run", standalone_mode=False
            )
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("run worker failed")
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    """``python -m lakewire.run_workers <socket path>``: what the supervisor runs."""
    jsonlogs.configure_json_logging()
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m lakewire.run_workers <socket path>")
    serve(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
