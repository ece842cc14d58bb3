"""A benchmark's private stack: ``tickpipe up`` of every service on free ports, stopped by pid.

The stack outlives nothing: the benchmark stops it on return, on an exception, on Ctrl-C and on
SIGTERM, and a watchdog process (``python -m bench._local_stack PID WORKDIR``, in its own session)
stops it when the benchmark dies without doing so (SIGKILL, e.g. ``tickpipe bench --timeout``,
whose runner kills a script 0.25 s after a Ctrl-C). The leading underscore keeps ``tickpipe bench``
from running this module as a benchmark.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from infra.broker import free_port
from infra.processes import alive, descendants, kill_all, terminate_all, wait_gone
from infra.stack import SERVICES, StackPaths, env_name
from infra.stack_control import StackRecord, command_exists, record_path
from infra.supervision import Supervisor

TICKPIPE = str(Path(sys.executable).with_name("tickpipe"))


@dataclass(frozen=True)
class LocalStack:
    """A running private stack: its environment and what ``tickpipe up`` recorded."""

    env: dict[str, str]
    home: Path

    @property
    def record(self) -> StackRecord:
        return StackRecord.load(record_path(StackPaths(self.home)))

    def url(self, service: str) -> str:
        """A service's base URL (the Kafka bootstrap for the broker)."""
        return next(s.url for s in self.record.services if s.name == service)

    def programs(self) -> dict[str, int]:
        """Each running service's program pid (a new pid = supervisord restarted it)."""
        return {i.name: i.pid for i in Supervisor(StackPaths(self.home)).all_info() if i.pid}


def _every_pid(home: Path) -> set[int]:
    supervisor = Supervisor(StackPaths(home))
    root = supervisor.pid() if supervisor.running() else supervisor.pidfile_pid()
    if not root or not alive(root):
        return set()
    return {root} | descendants(root)


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stack_env(home: Path, services: list[str], overrides: dict[str, str]) -> dict[str, str]:
    """The caller's environment without its TICKPIPE_* settings, a private home, every port free."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKPIPE_")}
    env.update(TICKPIPE_HOME=str(home), TICKPIPE_STACK__SERVICES=",".join(services), TICKPIPE_LOG_LEVEL="WARNING")
    for spec in SERVICES:
        if spec.name in services:
            env[env_name(spec.port_setting)] = str(free_port())
    if "broker" in services:
        env[env_name("broker.controller_port")] = str(free_port())
    env.update(overrides)
    return env


@contextmanager
def local_stack(workdir: Path, overrides: dict[str, str]) -> Iterator[LocalStack]:
    """``tickpipe up`` every available service in ``workdir``; always stop it and kill leftovers by pid."""
    home = workdir / "home"
    services = [s.name for s in SERVICES if command_exists(s.command)]
    env = stack_env(home, services, overrides)
    watchdog = subprocess.Popen(
        [sys.executable, "-m", "bench._local_stack", str(os.getpid()), str(workdir)],
        env=env, cwd=Path(__file__).resolve().parent.parent, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    # Ctrl-C and SIGTERM both end up in the finally below (SIGINT explicitly: a shell starting
    # the benchmark in the background leaves it ignored).
    previous_int = signal.signal(signal.SIGINT, _raise_interrupt)
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        print(f"starting {', '.join(services)} (TICKPIPE_HOME={home})", flush=True)
        started = time.monotonic()
        up = subprocess.run([TICKPIPE, "up"], env=env, cwd=workdir, capture_output=True, text=True, check=False)
        if up.returncode != 0:
            raise SystemExit(f"tickpipe up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
        print(f"stack healthy after {time.monotonic() - started:.1f} s", flush=True)
        yield LocalStack(env, home)
    finally:
        stop_stack(env, workdir)
        terminate_all({watchdog.pid})
        watchdog.wait()
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def stop_stack(env: dict[str, str], workdir: Path) -> None:
    """``tickpipe down``, then SIGKILL whatever of supervisord's tree is still alive."""
    # A second Ctrl-C must not cut the stop short.
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pids = _every_pid(Path(env["TICKPIPE_HOME"]))
        if not pids:
            return
        print(f"stopping the stack ({len(pids)} processes)", flush=True)
        subprocess.run([TICKPIPE, "down"], env=env, cwd=workdir, capture_output=True, timeout=120, check=False)
        left = wait_gone(pids, 5.0)
        kill_all(left)
        if wait_gone(left, 5.0):
            print(f"processes still alive after SIGKILL: {sorted(left)}", flush=True)
    finally:
        signal.signal(signal.SIGINT, previous_int)


def _watch(parent: int, workdir: Path) -> None:
    # The watchdog: once the benchmark is gone, stop what it left and remove its directory.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while alive(parent):
        time.sleep(0.5)
    stop_stack(dict(os.environ), workdir)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    _watch(int(sys.argv[1]), Path(sys.argv[2]))
