"""The Confluent wire format against a real Confluent Schema Registry (testcontainers: Apache Kafka +
cp-schema-registry on one Docker network). Skipped, with the reason, when no Docker engine answers.
The unreachable-registry case needs no Docker: it talks to a closed loopback port."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import fastavro
import pytest
import requests

from infra.broker import free_port
from infra.settings import KafkaSettings
from schemas.confluent import ConfluentRegistry, SchemaRegistryUnavailable
from schemas.framing import Framing, confluent_header, parse_header
from schemas.registry import raw_schema
from schemas.serde import AvroSerde, SerdeError
from tests.docker_backend import KAFKA_IMAGE, docker_engine_problem

REGISTRY_IMAGE = "confluentinc/cp-schema-registry:7.6.0"

TRADE: dict[str, Any] = {
    "venue": "binance",
    "symbol": "BTCUSDT",
    "trade_id": 42,
    "price": "0.00000001",
    "qty": "123456789.12345678",
    "side": "buy",
    "ts_event": 1,
    "ts_recv": 2,
}


def _wait_for_registry(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if requests.get(f"{url}/subjects", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"schema registry at {url} not ready after {timeout_s} s")
        time.sleep(1)


@pytest.fixture(scope="module")
def registry_url() -> Iterator[str]:
    """A real Confluent Schema Registry backed by a real Apache Kafka (KRaft), both in containers."""
    if problem := docker_engine_problem():
        pytest.skip(f"no Docker engine for the Confluent Schema Registry container ({problem})")
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

    with Network() as network:
        kafka = KafkaContainer(KAFKA_IMAGE).with_kraft().with_network(network).with_network_aliases("kafka")
        with kafka:
            registry = (
                DockerContainer(REGISTRY_IMAGE)
                .with_network(network)
                .with_env("SCHEMA_REGISTRY_HOST_NAME", "schema-registry")
                .with_env("SCHEMA_REGISTRY_LISTENERS", "http://0.0.0.0:8081")
                .with_env("SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS", "PLAINTEXT://kafka:9092")
                .with_env("SCHEMA_REGISTRY_KAFKASTORE_TOPIC_REPLICATION_FACTOR", "1")
                .with_exposed_ports(8081)
            )
            with registry:
                url = f"http://{registry.get_container_host_ip()}:{registry.get_exposed_port(8081)}"
                _wait_for_registry(url, timeout_s=120)
                yield url


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.timeout(300)
def test_encode_registers_under_topic_value_subject_and_a_fresh_serde_decodes(registry_url: str) -> None:
    # Arrange
    producer = AvroSerde.from_settings(KafkaSettings(schema_registry_url=registry_url))
    consumer = AvroSerde.from_settings(KafkaSettings(schema_registry_url=registry_url))  # cold caches
    # Act
    message = producer.encode("Trade", TRADE, topic="md.trades")
    # Assert: framing, subject and id as the registry itself reports them
    header = parse_header(message)
    latest = requests.get(f"{registry_url}/subjects/md.trades-value/versions/latest", timeout=10).json()
    assert producer.framing is Framing.CONFLUENT and header.framing is Framing.CONFLUENT
    assert header.key == latest["id"]
    assert json.loads(latest["schema"])["name"] == "Trade"
    assert consumer.decode(message) == ("Trade", TRADE)
    # the decoder still reads the local framing
    assert consumer.decode(AvroSerde().encode("Trade", TRADE)) == ("Trade", TRADE)
    producer.close()
    consumer.close()


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.timeout(300)
def test_record_on_several_topics_needs_the_topic(registry_url: str) -> None:
    serde = AvroSerde(registry=ConfluentRegistry(registry_url))
    bar = {
        "venue": "binance",
        "symbol": "BTCUSDT",
        "interval": "1m",
        "start": 0,
        "end": 60,
        "open": "1",
        "high": "1",
        "low": "1",
        "close": "1",
        "volume": "0",
        "quote_volume": "0",
        "vwap": "0",
        "trade_count": 0,
        "first_trade_id": 0,
        "last_trade_id": 0,
        "version": 0,
        "ts_event": 0,
        "ts_recv": 0,
        "ts_emit": 0,
    }
    with pytest.raises(SerdeError, match="pass topic="):
        serde.encode("Bar", bar)
    message = serde.encode("Bar", bar, topic="bars.1m")
    subjects = requests.get(f"{registry_url}/subjects", timeout=10).json()
    assert "bars.1m-value" in subjects
    assert serde.decode_as("Bar", message) == bar


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.timeout(300)
def test_unknown_id_and_foreign_schema_are_refused(registry_url: str) -> None:
    registry = ConfluentRegistry(registry_url)
    foreign_id = registry.register(
        "other-value",
        json.dumps(
            {
                "type": "record",
                "name": "User",
                "namespace": "acme",
                "fields": [{"name": "id", "type": "long"}],
            }
        ),
    )
    serde = AvroSerde(registry=registry)
    with pytest.raises(SerdeError, match="unknown schema id 987654"):
        serde.decode(confluent_header(987654) + b"\x02")
    with pytest.raises(SerdeError, match="'acme.User', not a tickpipe record"):
        serde.decode(confluent_header(foreign_id) + b"\x02")


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.timeout(300)
def test_message_written_with_an_older_registered_version_is_resolved(registry_url: str) -> None:
    # Arrange: an older DeadLetter (before venue/symbol) registered first, as an older producer did
    old = json.loads(json.dumps(raw_schema("DeadLetter")))
    old["fields"] = [f for f in old["fields"] if f["name"] not in ("venue", "symbol")]
    registry = ConfluentRegistry(registry_url)
    old_id = registry.register("dlq-value", json.dumps(old))
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body,
        fastavro.parse_schema(old),
        {
            "stage": "sink",
            "source_topic": "md.book",
            "partition": 1,
            "offset": 5,
            "raw": b"\xff",
            "error": "bad",
            "ts_event": 1,
            "ts_recv": 2,
        },
    )
    # Act: the current producer registers today's schema (backward compatible) and a consumer reads both
    serde = AvroSerde(registry=registry)
    current = serde.encode(
        "DeadLetter",
        {
            "venue": "binance",
            "symbol": "BTCUSDT",
            "stage": "sink",
            "source_topic": "md.book",
            "partition": 1,
            "offset": 6,
            "raw": b"",
            "error": "bad",
            "ts_event": 1,
            "ts_recv": 2,
        },
    )
    decoded_old = serde.decode_as("DeadLetter", confluent_header(old_id) + body.getvalue())
    # Assert
    assert parse_header(current).key != old_id
    assert decoded_old["venue"] == "" and decoded_old["symbol"] == "" and decoded_old["offset"] == 5


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_unreachable_registry_raises_a_retriable_error() -> None:
    serde = AvroSerde(registry=ConfluentRegistry(f"http://127.0.0.1:{free_port()}", max_retries=0))
    with pytest.raises(SchemaRegistryUnavailable, match="unreachable") as caught:
        serde.encode("Trade", TRADE)
    assert caught.value.retriable is True
    with pytest.raises(SchemaRegistryUnavailable):
        serde.decode(confluent_header(1) + b"\x00")
