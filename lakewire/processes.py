"""Whether a process is still there, as the supervisor and the run launcher both ask it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def pid_alive(pid: int, *, reap: bool = False) -> bool:
    """True while ``pid`` runs. A zombie (exited, not yet reaped) counts as gone; with
    ``reap``, a child of ours that exited is reaped on the way."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, alive
    with contextlib.suppress(OSError, IndexError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    if reap:
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return False
    return True
