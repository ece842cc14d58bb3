"""Process bookkeeping by pid (Linux /proc): liveness, descendants, and a verified stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def alive(pid: int) -> bool:
    """Return True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> set[int]:
    """Return every live process below ``pid`` (children, grandchildren, ...)."""
    parents = _parents()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def wait_gone(pids: set[int], timeout_s: float) -> set[int]:
    """Wait until none of ``pids`` is alive; return those still alive at the timeout."""
    deadline = time.monotonic() + timeout_s
    left = {p for p in pids if alive(p)}
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = {p for p in left if alive(p)}
    return left


def _signal_all(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue


def terminate_all(pids: set[int]) -> None:
    """SIGTERM each pid (a polite stop: flush, commit, close)."""
    _signal_all(pids, signal.SIGTERM)


def resume_all(pids: set[int]) -> None:
    """SIGCONT each pid (a stopped process handles pending signals only once continued)."""
    _signal_all(pids, signal.SIGCONT)


def kill_all(pids: set[int]) -> None:
    """SIGKILL each pid that is still alive (last resort after a polite stop)."""
    _signal_all(pids, signal.SIGKILL)


def stop_process(
    proc: subprocess.Popen, timeout_s: float = 10.0, sig: int = signal.SIGTERM
) -> int | None:
    """Send ``sig`` to a child we started (SIGTERM: flush, commit, close), SIGKILL it after ``timeout_s``.

    Return its exit code. A child that already exited is only reaped.
    """
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
