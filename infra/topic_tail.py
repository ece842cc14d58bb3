"""``tickpipe topics tail``: a topic's records as JSON lines, Avro decoded with the project's schemas.

No consumer group is joined and nothing is committed: tailing a topic never moves a service's offsets.
A message that is not a tickpipe Avro record (a JSON control message, a dead letter's raw bytes, a
corrupt body) is printed all the same, with what it is and why it did not decode.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from infra.topics import end_offsets
from schemas.serde import AvroSerde, SerdeError


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def render(msg: Message, serde: AvroSerde) -> str:
    """One message as a JSON line: where it is, its key, and its decoded value (or why it did not decode)."""
    key = msg.key()
    line: dict[str, Any] = {
        "topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
        "timestamp_ms": msg.timestamp()[1],
        "key": key.decode("utf-8", "backslashreplace") if key is not None else None,
    }
    value = msg.value()
    if value is None:
        line["value"] = None  # a tombstone
        return json.dumps(line)
    try:
        line["record"], line["value"] = serde.decode(value)
    except SerdeError as exc:
        try:
            line["value"] = json.loads(value)
            line["record"] = "json"
        except ValueError:
            line["record"], line["error"], line["raw"] = None, str(exc), _plain(value)
    return json.dumps(line, default=_plain, ensure_ascii=False)


def tail(
    bootstrap: str, topic: str, emit: Callable[[str], None], *, from_beginning: bool = False, last: int = 10,
    follow: bool = False, key: str | None = None, stop: threading.Event | None = None, timeout_s: float = 10.0,
) -> int:
    """Print ``topic``'s records through ``emit``; return how many were printed.

    Start at the beginning, or at the last ``last`` records of each partition; without ``follow``
    stop at the end offsets read at the start, with it go on until ``stop`` is set. ``key`` keeps only
    the records with that key.
    """
    stop = stop or threading.Event()
    serde = AvroSerde()
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"tickpipe-tail-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "enable.partition.eof": True, "log_level": 0,
    })
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise ValueError(f"no topic {topic!r} on {bootstrap}")
        bounds = end_offsets(bootstrap, [TopicPartition(topic, p) for p in sorted(metadata.partitions)], timeout_s)
        start = {p: low if from_beginning else max(low, end - last) for (_, p), (low, end) in bounds.items()}
        ends = {p: end for (_, p), (_, end) in bounds.items()}
        consumer.assign([TopicPartition(topic, p, offset) for p, offset in start.items()])
        printed = 0
        for msg in _messages(consumer, stop, ends if not follow else None, start):
            if key is not None and (msg.key() or b"") != key.encode():
                continue
            emit(render(msg, serde))
            printed += 1
        return printed
    finally:
        consumer.close()


def _messages(
    consumer: Consumer, stop: threading.Event, ends: dict[int, int] | None, start: dict[int, int]
) -> Iterator[Message]:
    # Without ``ends`` (follow) this runs until ``stop``; with them, until every partition reached its end.
    remaining = {p for p, end in (ends or {}).items() if end > start[p]}
    while not stop.is_set() and (ends is None or remaining):
        for msg in consumer.consume(500, 0.2):
            if msg.error() is not None:
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"reading {msg.topic()}: {msg.error()}")
                remaining.discard(msg.partition())
                continue
            if ends is not None:
                if msg.offset() >= ends[msg.partition()]:
                    remaining.discard(msg.partition())
                    continue
                if msg.offset() + 1 >= ends[msg.partition()]:
                    remaining.discard(msg.partition())
            yield msg
