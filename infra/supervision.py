"""supervisord as the local stack's process supervisor: start the daemon, talk to it over its unix socket."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport, UnixStreamHTTPConnection

from infra.stack import StackPaths


class SupervisionError(RuntimeError):
    """supervisord could not be started or reached."""

    retriable = False


@dataclass(frozen=True)
class ProcessInfo:
    """One supervised program as supervisord reports it."""

    name: str
    state: str  # RUNNING, STARTING, BACKOFF, STOPPED, EXITED, FATAL, ...
    pid: int
    uptime_s: float
    description: str

    @classmethod
    def from_rpc(cls, info: dict[str, Any]) -> ProcessInfo:
        """Build from one ``supervisor.getProcessInfo`` result."""
        uptime = float(info["now"] - info["start"]) if info["statename"] == "RUNNING" else 0.0
        return cls(info["name"], info["statename"], int(info["pid"]), uptime, info["description"])


class _TimedUnixConnection(UnixStreamHTTPConnection):
    # supervisor's own connection has no timeout: a frozen supervisord would hang every call.
    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socketfile)


class _TimedTransport(SupervisorTransport):
    def __init__(self, socket_path: Path, timeout_s: float) -> None:
        super().__init__(None, None, f"unix://{socket_path}")

        def connection() -> _TimedUnixConnection:
            conn = _TimedUnixConnection("localhost", timeout=timeout_s)
            conn.socketfile = str(socket_path)
            return conn

        self._get_connection = connection


class Supervisor:
    """A client of the stack's supervisord (one per ``TICKPIPE_HOME``)."""

    def __init__(self, paths: StackPaths) -> None:
        self.paths = paths

    def _proxy(self, timeout_s: float = 10.0) -> Any:
        transport = _TimedTransport(self.paths.socket, timeout_s)
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def running(self) -> bool:
        """Return True when supervisord answers on its socket."""
        if not self.paths.socket.exists():
            return False
        try:
            return self._proxy(3.0).getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def start_daemon(self, timeout_s: float = 15.0) -> int:
        """Start supervisord on the generated config (it daemonizes) and return its pid once it answers."""
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        if self.paths.socket.exists():
            self.paths.socket.unlink()  # left by a supervisord that was killed; nobody answers on it
        supervisord = Path(sys.executable).with_name("supervisord")
        result = subprocess.run(
            [str(supervisord), "-c", str(self.paths.conf)], capture_output=True, text=True, timeout=timeout_s, check=False
        )
        if result.returncode != 0:
            raise SupervisionError(f"supervisord failed to start: {result.stderr.strip() or result.stdout.strip()}")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.running():
                return self.pid()
            time.sleep(0.1)
        raise SupervisionError(
            f"supervisord did not answer on {self.paths.socket} within {timeout_s:.0f}s; "
            f"see {self.paths.logs / 'supervisord.log'}"
        )

    def pid(self) -> int:
        """supervisord's own pid."""
        return int(self._proxy().getPID())

    def start(self, name: str) -> None:
        """Ask supervisord to start ``name`` without waiting for it (health is probed separately)."""
        try:
            self._proxy().startProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise SupervisionError(f"supervisord could not start {name}: {fault.faultString}") from None

    def stop(self, name: str) -> None:
        """Ask supervisord to stop ``name`` (SIGTERM to its process group) without waiting."""
        try:
            self._proxy().stopProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise SupervisionError(f"supervisord could not stop {name}: {fault.faultString}") from None

    def info(self, name: str) -> ProcessInfo:
        """The state of one program."""
        return ProcessInfo.from_rpc(self._proxy().getProcessInfo(name))

    def all_info(self) -> list[ProcessInfo]:
        """The state of every program, in configuration order."""
        return [ProcessInfo.from_rpc(i) for i in self._proxy().getAllProcessInfo()]

    def stop_all(self, timeout_s: float) -> None:
        """Stop every program in reverse start order and wait (up to ``timeout_s``) for each to exit."""
        try:
            self._proxy(timeout_s).stopAllProcesses(True)
        except TimeoutError:
            return  # the caller verifies by pid and kills what is left

    def shutdown(self) -> None:
        """Ask supervisord to exit (after its programs have been stopped)."""
        try:
            self._proxy().shutdown()
        except (OSError, xmlrpc.client.Error):
            return  # it may close the socket before answering

    def pidfile_pid(self) -> int | None:
        """The pid written by a supervisord that may no longer answer (for cleanup)."""
        try:
            return int(self.paths.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
