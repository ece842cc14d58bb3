"""The executor's book at start comes from the feed's md.book.snapshots, continued by the md.book deltas after it."""

from __future__ import annotations

import time
import zlib
from decimal import Decimal

import pytest

from infra.settings import KafkaSettings
from schemas.serde import AvroSerde
from schemas.topics import BOOK_SNAPSHOTS, Topic, instrument_key
from tests.integration.executor.harness import executor_settings, new_account, produce, set_up_engine
from tests.polling import wait_for

pytestmark = pytest.mark.integration

SERDE = AvroSerde()
SYMBOL = "XRPUSDT"  # unknown to the simulator: its REST depth cannot be where the book came from
KEY = instrument_key("binance", SYMBOL)


def _record(uid: int, snapshot: bool, bids: dict[str, str], asks: dict[str, str], symbol: str = SYMBOL) -> bytes:
    now = time.time_ns()
    return SERDE.encode("BookDelta", {
        "venue": "binance", "symbol": symbol, "snapshot": snapshot, "first_update_id": uid, "last_update_id": uid,
        "bids": [{"price": p, "qty": q} for p, q in bids.items()], "asks": [{"price": p, "qty": q} for p, q in asks.items()],
        "ts_event": now, "ts_recv": now})


def _same_partition_key(partitions: int) -> bytes:
    # another instrument whose md.book records land on XRPUSDT's partition (librdkafka's CRC-32 partitioner)
    want = zlib.crc32(KEY) % partitions
    return next(k for k in (instrument_key("binance", f"F{i}USDT") for i in range(1000)) if zlib.crc32(k) % partitions == want)


@pytest.mark.timeout(90)
def test_a_starting_executor_loads_the_feeds_snapshot_record_and_applies_only_the_deltas_after_it(
    kafka_settings: KafkaSettings, executor_sim_url: str
) -> None:
    # Arrange: deltas 1-3 (the snapshot holds them), the snapshot at 3, deltas 4-6, then more records on the
    # same md.book partition than the executor reads back from the tail (200)
    bids = {f"0.{50 - i:02d}00": str(10 + i) for i in range(12)}  # 0.5000 down to 0.3900
    asks = {f"0.{51 + i:02d}00": str(20 + i) for i in range(12)}  # 0.5100 up to 0.6200
    before = [(KEY, _record(uid, False, {"0.5000": str(uid)}, {})) for uid in (1, 2, 3)]
    produce(kafka_settings, Topic.BOOK.value, before)
    produce(kafka_settings, BOOK_SNAPSHOTS, [(KEY, _record(3, True, bids, asks))])
    after = {4: ({"0.4500": "0", "0.5000": "77"}, {}), 5: ({"0.3800": "5"}, {"0.6200": "0"}), 6: ({}, {"0.5100": "1"})}
    produce(kafka_settings, Topic.BOOK.value, [(KEY, _record(uid, False, b, a)) for uid, (b, a) in after.items()])
    other = _same_partition_key(kafka_settings.partitions)
    other_symbol = other.decode().split(":")[1]
    produce(kafka_settings, Topic.BOOK.value, [(other, _record(uid, uid == 1, {"1.00": "1"}, {"2.00": "1"}, other_symbol))
                                               for uid in range(1, 301)])
    expected_bids, expected_asks = dict(bids), dict(asks)
    for b, a in after.values():
        for side, changes in ((expected_bids, b), (expected_asks, a)):
            for price, qty in changes.items():
                if qty == "0":
                    del side[price]
                else:
                    side[price] = qty
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, symbols=SYMBOL, depth_levels=20)

    # Act
    with set_up_engine(settings, kafka_settings) as engine:  # start-up only: no md record drained yet
        at_start = engine.market.snapshot("binance", SYMBOL)
        assert engine.market_feed is not None

        def book_at_6():
            engine.market_feed.drain()
            book = engine.market.snapshot("binance", SYMBOL)
            return book if engine.market.unfit("binance", SYMBOL, time.time_ns(), 0) is None and \
                book.bids[0] == (Decimal("0.5000"), Decimal(77)) and len(book.asks) == 11 else None

        final = wait_for(book_at_6, 20, "the deltas after the snapshot applied")

    # Assert: the snapshot's whole book at start (with its best levels as the quote), then exactly the deltas 4-6
    assert at_start is not None
    assert [(str(p), str(q)) for p, q in at_start.bids] == list(bids.items())
    assert [(str(p), str(q)) for p, q in at_start.asks] == list(asks.items())
    assert (str(at_start.quote.bid), str(at_start.quote.ask), at_start.quote.update_id) == ("0.5000", "0.5100", 3)
    want_bids = sorted(((Decimal(p), Decimal(q)) for p, q in expected_bids.items()), reverse=True)
    want_asks = sorted((Decimal(p), Decimal(q)) for p, q in expected_asks.items())
    assert (list(final.bids), list(final.asks)) == (want_bids, want_asks)
