"""Failpoints: a process SIGKILLs itself at a named point, so the fault suite can crash a
service exactly where a crash is most dangerous (between a publish and its outbox delete, with
a table commit landed and its run not finished) instead of hoping a timed kill lands there.

``LAKEWIRE_FAILPOINTS`` names the points a process may fire (comma-separated); unset, as in
every real deployment, :func:`failpoint` is one test of an empty set. A named point fires only
while its arm file ``<data dir>/state/failpoints/<name>`` exists, and it removes the file
first: one arm is one kill, so the restarted process (same environment) runs on instead of
crash-looping, and a test arms the point exactly when its clients are mid-stream and sees it
fired when the file is gone. The SIGKILL leaves no chance for cleanup, as a power cut would.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ENV = "LAKEWIRE_FAILPOINTS"

_named: frozenset[str] = frozenset(
    p.strip() for p in os.environ.get(ENV, "").split(",") if p.strip()
)


def arm_file(state_dir: Path, name: str) -> Path:
    """The file whose presence arms ``name`` (tests create it; the point removes it)."""
    return state_dir / "failpoints" / name


def failpoint(name: str) -> None:
    """SIGKILL this process here if ``name`` is named in ``LAKEWIRE_FAILPOINTS`` and armed."""
    if name in _named:
        _fire_if_armed(name)


def _fire_if_armed(name: str) -> None:
    from lakehouse.settings import Settings  # only processes with failpoints named pay for it

    try:
        os.unlink(arm_file(Settings().state_dir, name))  # whoever removes it is the one killed
    except FileNotFoundError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
