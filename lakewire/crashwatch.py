"""A supervisord event listener that ends crash loops supervisord itself would not.

supervisord gives up (FATAL) on a service only when it dies during start-up; one that runs
for its start-up seconds and then crashes is restarted every time, forever. This listener
counts unexpected exits per service and, when one has crashed ``--max`` times within
``--window`` seconds, stops it through supervisord and records why in ``--record`` (a JSON
file ``lakewire status`` reads). ``lakewire up`` or ``lakewire restart`` starts it again.

It speaks supervisord's event listener protocol on stdin/stdout; its own log goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
import xmlrpc.client
from collections import defaultdict, deque
from pathlib import Path

from lakehouse.jsonlogs import configure_json_logging

log = logging.getLogger("lakewire.crashwatch")


def _parse(line: str) -> dict[str, str]:
    return dict(part.split(":", 1) for part in line.split() if ":" in part)


def _record(path: Path, name: str, reason: str) -> None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[name] = {"reason": reason, "at": time.time()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    from lakewire.supervisor import _UnixTransport

    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--record", required=True, type=Path)
    ap.add_argument("--max", type=int, default=5)
    ap.add_argument("--window", type=float, default=120.0)
    args = ap.parse_args(argv)
    configure_json_logging()
    server = xmlrpc.client.ServerProxy(
        "http://localhost", transport=_UnixTransport(args.socket, 30.0)
    ).supervisor
    crashes: dict[str, deque[float]] = defaultdict(deque)
    stdin, stdout = sys.stdin, sys.stdout
    while True:
        stdout.write("READY\n")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return
        headers = _parse(line)
        payload = stdin.read(int(headers.get("len", "0")))
        body, _, _ = payload.partition("\n")
        fields = _parse(body)
        name = fields.get("processname", "")
        if headers.get("eventname") == "PROCESS_STATE_EXITED" and fields.get("expected") == "0":
            now = time.monotonic()
            seen = crashes[name]
            seen.append(now)
            while seen and now - seen[0] > args.window:
                seen.popleft()
            if len(seen) >= args.max:
                reason = (
                    f"crash loop: {len(seen)} unexpected exits within {args.window:.0f} s; "
                    "stopped by the supervisor's crash watch"
                )
                log.warning("service stopped: %s", reason, extra={"service": name})
                with contextlib.suppress(OSError, xmlrpc.client.Error):
                    _record(args.record, name, reason)
                    server.stopProcess(name, False)
                seen.clear()
        elif headers.get("eventname") == "PROCESS_STATE_RUNNING" and name:
            # Started again (by an operator or after a fix): forget the old verdict.
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(args.record.read_text())
                if name in data and time.time() - data[name]["at"] > 5:
                    data.pop(name)
                    args.record.write_text(json.dumps(data))
        stdout.write("RESULT 2\nOK")
        stdout.flush()


if __name__ == "__main__":
    main()
