"""The warm run-worker server as the launcher and the supervisor talk to it: probes and bad
requests never take it down, and a launcher that reached no server may start a fresh worker."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakewire.run_workers import WorkerServerUnavailable, request_worker, server_ready
from tests.helpers import wait_for


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    sock = tmp_path / "rw.sock"
    proc = subprocess.Popen([sys.executable, "-m", "lakewire.run_workers", str(sock)])
    try:
        wait_for(lambda: server_ready(sock), 120, "the warm worker server", 0.2)
        yield sock, proc
    finally:
        proc.terminate()
        proc.wait(10)


def test_probes_and_bad_requests_are_answered_and_the_server_stays_up(
    server: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    sock, proc = server
    for _ in range(20):  # the supervisor's ready check: connect, close
        assert server_ready(sock)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:  # a caller that hangs up
        conn.connect(str(sock))
        conn.sendall(b'{"execute_run_args": ')
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:  # a request without args
        conn.connect(str(sock))
        conn.sendall(b'{"no args": 1}\n')
        answer = json.loads(conn.makefile().readline())
    assert answer["error"].startswith("bad request")
    assert proc.poll() is None and server_ready(sock)


def test_no_server_means_a_fresh_worker_may_take_the_run(tmp_path: Path) -> None:
    with pytest.raises(WorkerServerUnavailable):
        request_worker(tmp_path / "absent.sock", "{}")
