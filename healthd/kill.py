"""Killing what a timed-out exec check left running inside a container."""
from __future__ import annotations

import os
import signal


def kill_tree(pid: int) -> None:
    """SIGKILL a process and its descendants (the exec'd shell and what it started)."""
    import psutil
    try:
        root = psutil.Process(pid)
        procs = root.children(recursive=True) + [root]
    except psutil.Error:
        return
    for p in procs:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
