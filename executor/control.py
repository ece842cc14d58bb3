"""The kill switch: trading-state messages on a compacted control topic.

``tickpipe executor halt`` / ``release`` publish ``{"state": "HALTED"|"ACTIVE"|"REDUCING", "reason": ...,
"ts": ns}`` under the key ``trading_state`` to ``ExecutorSettings.control_topic`` (one partition,
``cleanup.policy=compact``, so the latest state survives).  Every executor reads the topic from the
beginning at start and follows it while running, so a halt outlives restarts until it is released.
This is an operator command, not a market record, hence plain JSON rather than Avro.
"""

from __future__ import annotations

import logging
import time

import orjson
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from executor.risk import RiskEngine, TradingState
from infra.kafka_config import idempotent_producer_config
from infra.settings import KafkaSettings

log = logging.getLogger(__name__)

CONTROL_KEY = b"trading_state"


def ensure_control_topic(kafka: KafkaSettings, topic: str) -> None:
    """Create the one-partition compacted control topic if it does not exist."""
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    if topic in admin.list_topics(timeout=10).topics:
        return
    new = NewTopic(topic, num_partitions=1, replication_factor=kafka.replication_factor,
                   config={"cleanup.policy": "compact"})
    try:
        admin.create_topics([new])[topic].result(timeout=10)
    except KafkaException as exc:
        if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
            raise


def control_message(state: TradingState, reason: str) -> bytes:
    """The JSON value of a trading-state change."""
    return orjson.dumps({"state": state.value, "reason": reason, "ts": time.time_ns()})


def send_control(kafka: KafkaSettings, topic: str, state: TradingState, reason: str) -> None:
    """Publish a trading-state change and wait until the broker has it."""
    ensure_control_topic(kafka, topic)
    producer = Producer(idempotent_producer_config(kafka))
    producer.produce(topic, control_message(state, reason), CONTROL_KEY)
    if producer.flush(10) > 0:
        raise RuntimeError(f"control message to {topic} not delivered within 10 s")


def apply_control(risk: RiskEngine, value: bytes | None) -> TradingState | None:
    """Apply one control message to ``risk``; return the new state if it changed, None otherwise."""
    try:
        body = orjson.loads(value or b"")
        state = TradingState(body["state"])
        reason = str(body.get("reason", ""))
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
        log.error("bad control message ignored", extra={"raw": (value or b"")[:200], "error": str(exc)})
        return None
    if state is risk.state:
        return None
    risk.set_state(state, reason)
    log.warning("trading state changed", extra={"state": state.value, "reason": reason})
    return state
