"""Run the real local stack (`tickpipe up`) from tests: private TICKPIPE_HOME, free ports, stopped by pid.

For end-to-end tests and fault drills::

    with running_stack(tmp_path, "broker,warehouse,sim-exchange,feed,streams,sink,executor") as stack:
        stack.kill9("sink")                  # supervisord restarts it
        stack.wait_restarted("sink", old_pid)
        stack.tickpipe("status")

Every port of the chosen services is a free one (env overrides), the stack is brought down at the
end, and whatever supervisord, its programs or their children left alive is killed by pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from infra.broker import free_port
from infra.health import probe
from infra.processes import descendants, kill_all, wait_gone
from infra.settings import environ_without_settings
from infra.stack import SERVICES, Service, StackPaths, env_name
from infra.stack_control import StackRecord, record_path
from infra.supervision import Supervisor

TICKPIPE = str(Path(sys.executable).with_name("tickpipe"))
PORT_ENV = {spec.name: env_name(spec.port_setting) for spec in SERVICES}


def stack_env(home: Path, services: str, **overrides: str) -> dict[str, str]:
    """The environment of a private stack: the caller's TICKPIPE_* dropped, every service port free."""
    env = environ_without_settings()
    env.update(
        TICKPIPE_HOME=str(home),
        TICKPIPE_STACK__SERVICES=services,
        TICKPIPE_STACK__START_TIMEOUT_S="90",
        COLUMNS="200",
    )
    for name in services.split(","):
        env[PORT_ENV[name.strip()]] = str(free_port())
    if "broker" in services.split(","):
        env[env_name("broker.controller_port")] = str(free_port())
    env.update(overrides)
    return env


def run_tickpipe(env: dict[str, str], cwd: Path, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    """Run ``tickpipe ARGS`` as a user would; output captured as text."""
    return subprocess.run(
        [TICKPIPE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def supervised_pids(home: Path) -> set[int]:
    """supervisord, its programs and all their descendants (empty when no supervisord answers)."""
    supervisor = Supervisor(StackPaths(home))
    if not supervisor.running():
        return set()
    root = supervisor.pid()
    return {root} | descendants(root)


@dataclass(frozen=True)
class RunningStack:
    """A stack started by :func:`running_stack`."""

    env: dict[str, str]
    workdir: Path
    up_output: str

    @property
    def home(self) -> Path:
        return Path(self.env["TICKPIPE_HOME"])

    @property
    def record(self) -> StackRecord:
        """What ``tickpipe up`` started (services with ports and health URLs, bootstrap, warehouse URL)."""
        return StackRecord.load(record_path(StackPaths(self.home)))

    def service(self, name: str) -> Service:
        return next(s for s in self.record.services if s.name == name)

    def tickpipe(self, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        return run_tickpipe(self.env, self.workdir, *args, timeout=timeout)

    def pid(self, name: str) -> int:
        """The supervised program's pid (0 while it is not running)."""
        return Supervisor(StackPaths(self.home)).info(name).pid

    def kill9(self, name: str) -> int:
        """SIGKILL the service's program; return the pid that was killed."""
        pid = self.pid(name)
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, name: str, old_pid: int, timeout_s: float = 60.0) -> int:
        """Wait until supervisord runs ``name`` under a new pid that answers its health probe."""
        spec = self.service(name)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            info = Supervisor(StackPaths(self.home)).info(name)
            if info.state == "RUNNING" and info.pid not in (0, old_pid) and probe(spec).ok:
                return info.pid
            time.sleep(0.3)
        raise TimeoutError(f"{name} was not restarted and healthy within {timeout_s:.0f}s (old pid {old_pid})")


@contextmanager
def running_stack(workdir: Path, services: str = "broker,warehouse", **env: str) -> Iterator[RunningStack]:
    """``tickpipe up`` the given services in ``workdir``; always ``tickpipe down`` and kill leftovers by pid."""
    full_env = stack_env(workdir / "home", services, **env)
    result = run_tickpipe(full_env, workdir, "up")
    try:
        if result.returncode != 0:
            raise RuntimeError(f"tickpipe up failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        yield RunningStack(full_env, workdir, result.stdout)
    finally:
        left = supervised_pids(workdir / "home")
        run_tickpipe(full_env, workdir, "down", timeout=120)
        kill_all(wait_gone(left, 5.0))
