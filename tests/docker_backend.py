"""The Docker variant of the integration fixtures: Apache Kafka (KRaft) and ClickHouse server via testcontainers.

Used by ``tests/conftest.py`` when the ``docker`` backend is selected; without a Docker engine the
variant is skipped with the reason (never replaced by something else).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"  # Apache Kafka 3.6 in KRaft mode
CLICKHOUSE_IMAGE = "clickhouse/clickhouse-server:24.8"


@functools.cache
def docker_engine_problem() -> str | None:
    """Return why no Docker engine can be used, or None when one answers a ping."""
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as exc:  # noqa: BLE001 (any failure means: no usable engine)
        return f"{type(exc).__name__}: {exc}"
    return None


@contextmanager
def kafka_container() -> Iterator[str]:
    """Run Apache Kafka in KRaft mode; yield its bootstrap address."""
    from testcontainers.community.kafka import KafkaContainer

    with KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka:
        yield kafka.get_bootstrap_server()


@contextmanager
def clickhouse_container(timeout_s: float = 60.0) -> Iterator[str]:
    """Run a ClickHouse server (user ``default``, no password); yield its HTTP base URL once /ping answers."""
    from testcontainers.core.container import DockerContainer

    container = (
        DockerContainer(CLICKHOUSE_IMAGE)
        .with_exposed_ports(8123)
        .with_env("CLICKHOUSE_SKIP_USER_SETUP", "1")
    )
    with container:
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(8123)}"
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if requests.get(f"{url}/ping", timeout=2).text.strip() == "Ok.":
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"ClickHouse container at {url} did not answer /ping in {timeout_s:.0f}s")
            time.sleep(0.5)
        yield url
