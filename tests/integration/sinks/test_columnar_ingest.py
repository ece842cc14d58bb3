"""One poll mixing what the column-wise path takes and what it hands to the per-message path."""

from __future__ import annotations

from decimal import Decimal

import pytest
from confluent_kafka import Message

from infra.settings import KafkaSettings, SinkSettings
from schemas.serde import AvroSerde
from sinks.arrow_block import arrow_table
from sinks.consumer import SinkLoop
from sinks.ddl import table_spec
from tests.integration.sinks.conftest import Archive

TRADE = {"venue": "binance", "symbol": "BTCUSDT", "trade_id": 1, "price": "64000.5", "qty": "0.001", "side": "buy",
         "ts_event": 1_700_000_000_000_000_000, "ts_recv": 1_700_000_000_000_000_700}


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_mixed_poll_archives_each_message_as_the_per_message_path_would(
    kafka_settings: KafkaSettings, archive: Archive
) -> None:
    # Arrange: partition 0 was archived up to offset 3 before a crash
    serde = AvroSerde()
    loop = SinkLoop(kafka_settings, SinkSettings(group_id="mixed-poll", metrics_port=0), archive.client, ["md.trades"])
    loop._frontier_rows[("md.trades", 0)] = 3

    def trade(offset: int, partition: int = 1, **fields: object) -> Message:
        value = serde.encode("Trade", {**TRADE, "trade_id": offset, **fields})
        return Message(topic="md.trades", partition=partition, offset=offset, value=value)

    poll = [
        trade(3, partition=0),                              # already archived: skipped
        trade(4, partition=0),                              # column-wise
        trade(10),                                          # column-wise
        trade(11, price="1E+2"),                            # not plain: normalised by the per-message path
        trade(12, qty="0.0000000000000000001"),             # 19 places: dead letter
        Message(topic="md.trades", partition=1, offset=13, value=b"\x00junk"),  # bad framing: dead letter
        Message(topic="md.trades", partition=1, offset=14, value=None),         # tombstone: dead letter
        trade(15, price="٣"),                               # other script's digit: normalised
    ]
    # Act
    try:
        loop._ingest_many(poll, now=0)
    finally:
        loop._consumer.close()  # never subscribed: the poll above is fed by hand
        loop._executor.shutdown()
    batch = loop._batcher.take({"md.trades": "tid"})
    # Assert
    spec = table_spec("md.trades")
    table = arrow_table(spec, batch.rows.get(spec.name, []), "tid", batch.blocks.get(spec.name, ()))
    prices = {row["_offset"]: row["price"] for row in table.to_pylist()}
    assert prices == {4: Decimal("64000.5"), 10: Decimal("64000.5"), 11: Decimal(100), 15: Decimal(3)}
    assert sorted((d[1], d[2]) for d in batch.dead_letters) == [(1, 12), (1, 13), (1, 14)]
    assert batch.offsets == {("md.trades", 0): (3, 4), ("md.trades", 1): (10, 15)}
    assert batch.messages == len(poll)
    assert sum(b.num_rows for b in batch.blocks[spec.name]) == 2  # the two plain trades went column-wise
