"""infra.topics against a real broker: a topic read to its exact end; topics created with their configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Producer

from infra.broker import private_broker
from infra.topics import read_to_end

pytestmark = pytest.mark.integration


@pytest.mark.timeout(60)
def test_read_to_end_returns_every_message_once_including_a_whole_last_batch(tmp_path: Path) -> None:
    with private_broker(tmp_path / "kafka") as (kafka, _):
        # Arrange: five records in one batch on partition 1, two more on partition 3, nothing elsewhere
        topic = "dlq"
        producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 100})
        values = [f"p1-{i}".encode() for i in range(5)] + [b"p3-0", b"p3-1"]
        for value in values:
            producer.produce(topic, value, partition=1 if value.startswith(b"p1") else 3)
        assert producer.flush(10) == 0

        # Act
        messages = read_to_end(kafka.bootstrap, topic, timeout_s=20)

    # Assert
    assert sorted(m.value() for m in messages) == sorted(values)
    assert [m.offset() for m in messages if m.partition() == 1] == [0, 1, 2, 3, 4]
