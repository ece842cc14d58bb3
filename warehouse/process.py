"""Start and control a ``tickpipe warehouse`` process: for tests, fault drills and benchmarks.

``WarehouseProcess(port, data_dir).start()`` returns once ``/ping`` answers; ``pause()`` /
``resume()`` freeze and thaw it (SIGSTOP/SIGCONT: clients see a server that stops answering,
the store stays open), ``stop()`` ends it with SIGTERM (store closed cleanly), and ``start()``
again reopens the SAME data dir, so data survives a restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from infra.broker import port_in_use
from infra.health import wait_answering
from infra.processes import stop_process


class WarehouseStartError(RuntimeError):
    """The warehouse process did not come up."""

    retriable = False


def _tickpipe_argv() -> list[str]:
    script = Path(sys.executable).parent / "tickpipe"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from infra.cli import main; main()"]


class WarehouseProcess:
    """One warehouse process on ``host:port`` owning ``data_dir``; stops exactly its own pid."""

    def __init__(
        self,
        port: int,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        user: str = "default",
        password: str = "",
        log_path: Path | None = None,
        start_timeout_s: float = 30.0,
        settings_env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = port
        self.host = host
        self.data_dir = Path(data_dir)
        self.user = user
        self.password = password
        self.log_path = log_path or self.data_dir.parent / f"warehouse-{port}.log"
        self.start_timeout_s = start_timeout_s
        self.settings_env = dict(settings_env or {})  # more TICKPIPE_WAREHOUSE__* for this process
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP interface, e.g. ``http://127.0.0.1:8123``."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> Self:
        """Spawn the process and wait until ``/ping`` answers ``Ok.``."""
        if self.proc is not None and self.proc.poll() is None:
            raise WarehouseStartError(f"warehouse already running as pid {self.proc.pid}")
        if port_in_use(self.host, self.port):
            raise WarehouseStartError(f"port {self.host}:{self.port} is already in use")
        # the caller's environment passes through; the warehouse's own settings ride on top
        env = dict(os.environ)
        env.update({"TICKPIPE_WAREHOUSE__USER": self.user, "TICKPIPE_WAREHOUSE__PASSWORD": self.password})
        env.update(self.settings_env)
        argv = [*_tickpipe_argv(), "warehouse", "--host", self.host, "--port", str(self.port),
                "--data-dir", str(self.data_dir)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        if wait_answering(self.proc, f"{self.url}/ping", self.start_timeout_s, lambda response: response.text == "Ok.\n"):
            return
        if self.proc.poll() is not None:
            raise WarehouseStartError(
                f"warehouse exited with {self.proc.returncode} at start; log {self.log_path}:\n{self._log_tail()}"
            )
        self.stop()
        raise WarehouseStartError(f"warehouse did not answer /ping within {self.start_timeout_s} s; log {self.log_path}")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (in-flight requests finish, the store closes), SIGKILL after ``timeout_s``."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a paused process cannot handle SIGTERM
        return stop_process(proc, timeout_s)

    def restart(self) -> Self:
        """Stop, then start again on the same port and data dir."""
        self.stop()
        return self.start()

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections hang as with an unreachable server."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Thaw a paused process (SIGCONT)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
