"""The integration fixtures' backends: local processes always, Docker containers when an engine answers."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from confluent_kafka import Consumer, Producer

from infra.settings import KafkaSettings
from tests.docker_backend import docker_engine_problem

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(60)
def test_kafka_settings_carry_a_message_through_the_broker(kafka_settings: KafkaSettings) -> None:
    # Arrange
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap})
    consumer = Consumer({
        "bootstrap.servers": kafka_settings.bootstrap, "group.id": f"backend-{time.time_ns()}",
        "auto.offset.reset": "earliest", "session.timeout.ms": kafka_settings.session_timeout_ms,
    })
    marker = f"backend-check-{time.time_ns()}".encode()

    # Act
    producer.produce("dlq", key=b"test:BACKEND", value=marker)
    assert producer.flush(10) == 0
    consumer.subscribe(["dlq"])
    seen = []
    deadline = time.monotonic() + 30
    while marker not in seen and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            seen.append(msg.value())
    consumer.close()

    # Assert
    assert marker in seen


@pytest.mark.timeout(60)
def test_warehouse_url_answers_clickhouse_queries(warehouse_url: str) -> None:
    response = requests.get(warehouse_url, params={"query": "SELECT 40 + 2"}, timeout=10)

    assert response.status_code == 200
    assert response.text.strip() == "42"


@pytest.mark.timeout(120)
def test_the_docker_variant_is_collected_and_skipped_with_the_reason_when_no_engine_answers() -> None:
    # Act: only the docker variant of this module's fixture tests
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "--backend", "docker",
         f"{Path(__file__).relative_to(ROOT)}::test_warehouse_url_answers_clickhouse_queries"],
        cwd=ROOT, capture_output=True, text=True, timeout=110, check=False,
    )

    # Assert
    out = result.stdout
    if docker_engine_problem() is None:
        assert result.returncode == 0 and "1 passed" in out, out
    else:
        assert result.returncode == 0 and "1 skipped" in out and "no Docker engine answers" in out, out
