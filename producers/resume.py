"""Where a restarted feed resumes: the newest trade id per symbol already in ``md.trades``.

A feed that was killed (or crashed) missed the venue's trades while it was down, and whatever
librdkafka still held in RAM was lost with it. Reading the tail of its own output topic tells the
new process the last trade that really reached Kafka; the pipeline then backfills everything after
it from the venue's trade history once the first live trade shows the hole. This is the source
offset pattern of Kafka Connect, kept in the data topic itself: no extra state store.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, TopicPartition

from infra.settings import KafkaSettings
from infra.topics import end_offsets
from schemas.serde import AvroSerde, SerdeError
from schemas.topics import Topic

log = logging.getLogger(__name__)

TAIL_RECORDS = 5_000
"""Records read back per partition (a partition carries a few symbols; each symbol's newest trades are near the end)."""


def last_trade_ids(kafka: KafkaSettings, venue: str, symbols: list[str], timeout_s: float = 10.0) -> dict[str, int]:
    """Return the newest trade id per symbol of ``venue`` in the last records of ``md.trades`` (absent: none found)."""
    consumer = Consumer({
        "bootstrap.servers": kafka.bootstrap, "group.id": "tickpipe-feed-resume", "enable.auto.commit": False,
        "enable.partition.eof": True, "log_level": 0,
    })
    serde = AvroSerde.from_settings(kafka)
    wanted = set(symbols)
    found: dict[str, int] = {}
    try:
        metadata = consumer.list_topics(Topic.TRADES, timeout=timeout_s)
        partitions = [TopicPartition(Topic.TRADES, p) for p in sorted(metadata.topics[Topic.TRADES].partitions)]
        ends = end_offsets(kafka.bootstrap, partitions, timeout_s)
        pending = {p: end for (_, p), (low, end) in ends.items() if end > low}
        if not pending:
            return found
        consumer.assign([
            TopicPartition(Topic.TRADES, p, max(ends[(Topic.TRADES, p)][0], end - TAIL_RECORDS))
            for p, end in pending.items()
        ])
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    pending.pop(msg.partition(), None)
                continue
            try:
                trade = serde.decode_as("Trade", msg.value())
            except SerdeError:
                continue  # not ours to judge here; the sink dead-letters it
            if trade["venue"] == venue and trade["symbol"] in wanted:
                found[trade["symbol"]] = max(found.get(trade["symbol"], 0), trade["trade_id"])
            if msg.offset() + 1 >= pending.get(msg.partition(), 0):
                pending.pop(msg.partition(), None)
        if pending:
            log.warning("md.trades tail not fully read; resuming from what was read", extra={"partitions": sorted(pending)})
        return found
    finally:
        consumer.close()
