"""Health probes of the local stack's services (a Kafka metadata request or an HTTP GET), and the wait for a child to answer."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from confluent_kafka.admin import AdminClient

from infra.stack import Probe, Service


@dataclass(frozen=True)
class Health:
    """The outcome of one probe."""

    ok: bool
    detail: str


def probe(service: Service, timeout_s: float = 2.0) -> Health:
    """Probe ``service`` once; never raises."""
    if service.probe is Probe.KAFKA:
        return _kafka(service.url, timeout_s)
    return _http(service.health_url, timeout_s)


def _kafka(bootstrap: str, timeout_s: float) -> Health:
    admin = AdminClient(
        {"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 1000, "log_level": 0}
    )
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 (KafkaException while down or booting)
        return Health(False, f"no metadata: {exc}")
    return Health(True, f"{len(metadata.brokers)} broker(s), {len(metadata.topics)} topic(s)")


def _http(url: str, timeout_s: float) -> Health:
    try:
        response = requests.get(url, timeout=timeout_s)
    except requests.RequestException as exc:
        return Health(False, f"GET {url}: {type(exc).__name__}")
    body = response.text.strip().replace("\n", " ")
    return Health(response.status_code == 200, f"HTTP {response.status_code} {body[:80]}")


def wait_answering(
    proc: subprocess.Popen,
    url: str,
    timeout_s: float,
    answered: Callable[[requests.Response], bool] = lambda response: response.status_code == 200,
) -> bool:
    """GET ``url`` every 0.1 s until ``answered(response)``: True then, False once ``proc`` exits or ``timeout_s`` passes.

    For a service we just started: a refused connection means "not up yet", an exited child means it never will be.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if answered(requests.get(url, timeout=1)):
                return True
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return False
