"""KafkaPublisher's RAM buffer bound, with a real librdkafka client and no broker listening."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from infra.broker import free_port
from infra.settings import KafkaSettings
from producers.health import FeedEvents
from producers.metrics import FeedMetrics
from producers.publisher import KafkaPublisher

TRADE = {"venue": "binance", "symbol": "BTCUSDT", "trade_id": 1, "price": "1.0", "qty": "2", "side": "buy",
         "ts_event": 1, "ts_recv": 2}


def test_records_past_the_bound_are_dropped_counted_and_reported_when_room_returns() -> None:
    # Arrange: nothing listens on the port, so every record waits in RAM
    kafka = KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}")
    pub = KafkaPublisher(kafka, FeedEvents("binance", "t"), FeedMetrics(CollectorRegistry()), lambda: 0,
                         buffer_max_records=50, delivery_timeout_ms=1000)
    # Act
    for i in range(80):
        pub.publish("md.trades", b"binance:BTCUSDT", "Trade", {**TRADE, "trade_id": i})
    # Assert: exactly the bound is held, the rest dropped and counted
    assert pub.waiting == 50
    assert pub.dropped == 30
    # the undeliverable records time out (failures counted), freeing room; the next publish reports the drops
    left = pub.flush(10)
    assert left == 0 and pub.failed == 50
    assert pub.unreported_drops == 30
    pub.publish("md.trades", b"binance:BTCUSDT", "Trade", TRADE)
    assert pub.unreported_drops == 0
    pub.flush(10)
    assert pub.failed == 52  # the record and the `dropped` FeedEvent (undeliverable here too)
    assert pub.dropped == 30
