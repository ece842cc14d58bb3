"""The kill switch: trading-state messages on a compacted control topic.

``tickpipe executor halt`` / ``resume`` publish ``{"state": "HALTED"|"ACTIVE"|"REDUCING", "reason": ...,
"ts": ns, "sig": hex}`` under the key ``trading_state:<ts>`` to ``ExecutorSettings.control_topic`` (one
partition, ``cleanup.policy=compact``; one key per message, so no signed message is compacted away).  ``sig`` is an HMAC-SHA256 made
with ``ExecutorSettings.control_key``: an unsigned, badly signed or replayed message (a ``ts`` not
after the last accepted one, or older than ``control_max_age_ms`` once the history is read) is
rejected and counted.  Every executor reads the topic from the beginning at start and follows it
while running, so a halt outlives restarts until it is released.  This is an operator command, not a
market record, hence plain JSON rather than Avro.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Any

import orjson
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from executor.risk import RiskEngine, TradingState
from infra.kafka_config import idempotent_producer_config
from infra.settings import KafkaSettings

log = logging.getLogger(__name__)

CONTROL_KEY = b"trading_state"
"""Key prefix: each message is keyed ``trading_state:<ts>``, so compaction keeps every signed message
(a forged one published later under any key cannot compact the last signed HALT away)."""


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


def signature(key: str, state: str, reason: str, ts: int) -> str:
    """Hex HMAC-SHA256 over ``state``, ``reason`` and ``ts`` (one per line) keyed with ``key``."""
    return hmac.new(key.encode(), f"{state}\n{reason}\n{ts}".encode(), hashlib.sha256).hexdigest()


def control_message(state: TradingState, reason: str, key: str, ts: int | None = None) -> bytes:
    """The JSON value of a trading-state change, signed with ``key``."""
    ts = time.time_ns() if ts is None else ts
    return orjson.dumps({"state": state.value, "reason": reason, "ts": ts,
                         "sig": signature(key, state.value, reason, ts)})


def send_control(kafka: KafkaSettings, topic: str, state: TradingState, reason: str, key: str) -> None:
    """Publish a signed trading-state change and wait until the broker has it."""
    ensure_control_topic(kafka, topic)
    producer = Producer(idempotent_producer_config(kafka))
    ts = time.time_ns()
    producer.produce(topic, control_message(state, reason, key, ts), CONTROL_KEY + f":{ts}".encode())
    if producer.flush(10) > 0:
        raise RuntimeError(f"control message to {topic} not delivered within 10 s")


class ControlVerifier:
    """Accepts a control message only if signed with the key, newer than the last accepted one and,
    once the executor has read the topic's history, younger than ``max_age_ns``."""

    def __init__(self, key: str, max_age_ns: int) -> None:
        self.key, self.max_age_ns = key, max_age_ns
        self.last_ts = 0

    def verify(self, value: bytes | None, now: int, live: bool) -> dict[str, Any] | str:
        """Return the message body, or why it is rejected (``"<kind>: detail"``, kind for the metric)."""
        try:
            body = orjson.loads(value or b"")
            state, reason, ts = str(body["state"]), str(body.get("reason", "")), int(body["ts"])
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
            return f"malformed: {exc}"
        sig = body.get("sig")
        if not isinstance(sig, str) or not sig:
            return "unsigned: no sig field"
        if not hmac.compare_digest(signature(self.key, state, reason, ts), sig.lower()):
            return "bad_signature: HMAC does not match the control key"
        if ts <= self.last_ts:
            return f"replayed: ts {ts} not after the last accepted {self.last_ts}"
        if live and now - ts > self.max_age_ns:
            return f"replayed: {(now - ts) / 1e6:.0f} ms old, max {self.max_age_ns / 1e6:.0f} ms"
        self.last_ts = ts
        return {"state": state, "reason": reason, "ts": ts}


def apply_control(risk: RiskEngine, body: dict[str, Any]) -> TradingState | None:
    """Apply one verified control message to ``risk``; return the new state if it changed, None otherwise."""
    try:
        state = TradingState(body["state"])
    except ValueError as exc:
        log.error("control message with an unknown state ignored", extra={"body": body, "error": str(exc)})
        return None
    reason = body["reason"]
    if state is risk.state:
        return None
    risk.set_state(state, reason)
    log.warning("trading state changed", extra={"state": state.value, "reason": reason})
    return state
