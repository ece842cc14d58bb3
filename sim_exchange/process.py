"""Start ``tickpipe sim-exchange`` as a child process and drive its ``/_sim/*`` control API.

Used by the test fixtures (``tests/conftest.py``), the benchmarks and the local stack: the
process is real (own port, own event loop) and is stopped by its pid.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from infra.broker import free_port
from infra.health import wait_answering
from infra.processes import stop_process

_TICKPIPE = str(Path(sys.executable).with_name("tickpipe"))


class SimExchangeStartError(RuntimeError):
    """The simulator did not answer ``/api/v3/ping`` in time; the message carries its log tail."""


@dataclass
class SimExchangeProcess:
    """A running simulator: URLs, pid and helpers for the control API."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path | None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def control(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """Call a ``/_sim/*`` endpoint and return its JSON (raises on HTTP errors)."""
        response = requests.request(method, self.rest_url + path, json=body, params=params or None, timeout=10)
        response.raise_for_status()
        return response.json()

    def set_faults(self, faults: dict[str, Any]) -> dict[str, Any]:
        """``POST /_sim/faults`` (see docs/sim_exchange.md for the JSON)."""
        return self.control("POST", "/_sim/faults", faults)

    def clear_faults(self) -> None:
        self.control("DELETE", "/_sim/faults")

    def connections(self) -> list[dict[str, Any]]:
        return self.control("GET", "/_sim/connections")

    def set_flow(self, events_per_s: float | None = None, paused: bool | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if events_per_s is not None:
            body["events_per_s"] = events_per_s
        if paused is not None:
            body["paused"] = paused
        return self.control("POST", "/_sim/flow", body)

    def step(self, events: int) -> dict[str, Any]:
        """Run ``events`` background flow events now (deterministic; pause the flow first)."""
        return self.control("POST", "/_sim/step", {"events": events})

    def book(self, symbol: str) -> dict[str, Any]:
        """The whole book: ``{"lastUpdateId", "bids", "asks"}``."""
        return self.control("GET", "/_sim/book", symbol=symbol)

    def trades(self, symbol: str, from_id: int = 1) -> list[dict[str, Any]]:
        """Every trade the exchange made on ``symbol`` from ``from_id`` on, in id order."""
        out: list[dict[str, Any]] = []
        while True:
            page = self.control("GET", "/_sim/trades", symbol=symbol, fromId=from_id, limit=100_000)
            out.extend(page)
            if len(page) < 100_000:
                return out
            from_id = page[-1]["id"] + 1

    def health(self) -> dict[str, Any]:
        return self.control("GET", "/_sim/health")

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; only this pid."""
        stop_process(self.proc, timeout_s)


def start_sim_exchange(
    port: int | None = None,
    log_path: Path | None = None,
    timeout_s: float = 30.0,
    accounts: list[str] | None = None,
    **settings: Any,
) -> SimExchangeProcess:
    """Start the simulator on ``port`` (free one if None) and wait until it answers.

    ``settings`` are :class:`~infra.settings.SimExchangeSettings` fields (``seed=7``,
    ``symbols="BTCUSDT,ETHUSDT"``, ``events_per_s=500``, ``faults='{...}'`` or a dict, ...);
    ``accounts`` adds ``KEY:SECRET[:MAKER:TAKER]`` accounts to the default one.
    """
    import orjson

    port = port or free_port()
    args = [_TICKPIPE, "sim-exchange", "--port", str(port)]
    for name, value in settings.items():
        if isinstance(value, dict):
            value = orjson.dumps(value).decode()
        args += ["--set", f"{name}={value}"]
    for account in accounts or []:
        args += ["--account", account]
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 (child keeps it)
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL)
    sim = SimExchangeProcess(proc, port, log_path)
    if wait_answering(proc, sim.rest_url + "/api/v3/ping", timeout_s):
        return sim
    sim.stop()
    tail = log_path.read_text()[-3000:] if log_path and log_path.exists() else "(no log)"
    raise SimExchangeStartError(f"sim exchange on port {port} did not start (exit {proc.returncode}): {tail}")
