"""Every record type, framed by the serde, goes through the real broker to its topic and decodes
back unchanged (exact decimal strings included), keyed by instrument."""

from __future__ import annotations

import copy
import functools
import time
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from infra.settings import KafkaSettings
from schemas.registry import raw_schema
from schemas.serde import AvroSerde
from schemas.topics import RECORD_OF_TOPIC, Topic, instrument_key
from tests.unit.schemas.strategies import record_strategy

SERDE = AvroSerde()
RECORDS_PER_EXAMPLE = 8


def _key(record: dict[str, Any]) -> bytes:
    return instrument_key(record.get("venue", ""), record.get("symbol", ""))


def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> list[tuple[int, int]]:
    """Return the (partition, offset) of each message, in the order given (deliveries may interleave)."""
    positions: dict[int, tuple[int, int]] = {}
    errors: list[KafkaError] = []

    def delivered(index: int, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            positions[index] = (msg.partition(), msg.offset())

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": False, "linger.ms": 5})
    for index, (key, value) in enumerate(messages):
        producer.produce(topic, value=value, key=key, on_delivery=functools.partial(delivered, index))
    assert producer.flush(30) == 0 and errors == []
    return [positions[i] for i in range(len(messages))]


def _consume(bootstrap: str, topic: str, positions: list[tuple[int, int]]) -> list[tuple[bytes, bytes]]:
    # assign() at the delivered offsets: no consumer-group join needed
    first: dict[int, int] = {}
    for partition, offset in positions:
        first[partition] = min(offset, first.get(partition, offset))
    wanted = set(positions)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "schemas-roundtrip", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, o) for p, o in first.items()])
    got: dict[tuple[int, int], tuple[bytes, bytes]] = {}
    deadline = time.monotonic() + 30
    try:
        while wanted - set(got) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            got[(msg.partition(), msg.offset())] = (msg.key(), msg.value())
    finally:
        consumer.close()
    assert wanted <= set(got), f"{len(wanted - set(got))} messages not read back from {topic}"
    return [got[p] for p in positions]


@pytest.mark.integration
@pytest.mark.timeout(240)
@pytest.mark.parametrize("topic", list(Topic))
@settings(
    max_examples=2,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(data=st.data())
def test_every_record_type_survives_the_broker_unchanged(
    kafka_settings: KafkaSettings, topic: Topic, data: st.DataObject
) -> None:
    # Arrange
    name = RECORD_OF_TOPIC[topic]
    records = data.draw(
        st.lists(
            record_strategy(raw_schema(name)), min_size=RECORDS_PER_EXAMPLE, max_size=RECORDS_PER_EXAMPLE
        )
    )
    messages = [(_key(r), SERDE.encode(name, copy.deepcopy(r), topic=topic)) for r in records]
    # Act
    positions = _produce(kafka_settings.bootstrap, topic, messages)
    read_back = _consume(kafka_settings.bootstrap, topic, positions)
    # Assert: same key and bytes at each message's position, decoding to the record sent
    for (key, value), (sent_key, sent_value), record in zip(read_back, messages, records, strict=True):
        assert key == sent_key and value == sent_value
        assert SERDE.decode(value) == (name, record)
