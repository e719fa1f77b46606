"""Helpers the bench scripts share: a free local port, polling, a process's CPU seconds."""

import os
import socket
import time
from pathlib import Path
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait(predicate: Any, timeout: float = 600.0, what: str = "a condition",
         every: float = 0.1) -> Any:
    """Poll until `predicate()` is truthy and return its value; TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and its reaped children (Linux /proc); None once
    it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # u/s time, children
