"""Every topic lands typed and exact; undecodable messages go to dead_letters; 1 m OHLCV equals pandas."""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal

import pandas as pd
import pytest

from infra.settings import KafkaSettings
from schemas.serde import AvroSerde
from schemas.topics import Topic
from sinks.ddl import table_name
from tests.integration.sinks.conftest import Archive, ThreadedSink, produce, wait_for
from tests.integration.sinks.records import T0, sample_records


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_every_topic_lands_typed_and_exact_and_bad_messages_go_to_dead_letters(
    private_kafka: KafkaSettings, archive: Archive, threaded_sink: Callable[..., ThreadedSink]
) -> None:
    # Arrange
    samples = sample_records()
    for topic, record in samples.items():
        produce(private_kafka, topic, [record])
    wrong_type = AvroSerde().encode("BBO", samples["md.bbo"])
    produce(private_kafka, "md.trades", [], raw=[b"not avro at all", wrong_type])
    bad_decimal = {**samples["md.trades"], "trade_id": 2, "price": "0.0000000000000000001"}
    produce(private_kafka, "md.trades", [bad_decimal])
    # Act
    sink = threaded_sink(archive)
    wait_for(lambda: archive.scalar("SELECT count() FROM dead_letters") == 3
             and all(archive.scalar(f"SELECT count() FROM {table_name(t)}") == 1 for t in samples),
             60, "one row per topic and three dead letters")
    sink.stop()
    # Assert: exact decimals, ns times, arrays, nullables, metadata
    client = archive.client
    trade = client.query("SELECT price, qty, toUnixTimestamp64Nano(ts_event), toUnixTimestamp64Nano(ts_recv), "
                         "toTypeName(venue), _topic, _offset FROM md_trades").result_rows[0]
    assert trade == (Decimal("123456789.12345678"), Decimal("0.00000001"), T0, T0 + 1_000,
                     "LowCardinality(String)", "md.trades", 0)
    book = client.query("SELECT bids, asks, snapshot FROM md_book").result_rows[0]
    assert [tuple(level.values()) if isinstance(level, dict) else level for level in book[0]] == [
        (Decimal("64000.01"), Decimal("1.5")), (Decimal("63999.99"), Decimal(0))]
    assert book[2] is False
    order = client.query("SELECT price, avg_price, time_in_force, previous_status, toTypeName(price) "
                         "FROM orders").result_rows[0]
    assert order == (Decimal("64000.01"), None, "GTC", "pending_new", "Nullable(Decimal(38, 18))")
    bar = client.query("SELECT vwap, toUnixTimestamp64Nano(start), volume FROM bars_1s").result_rows[0]
    assert bar == (Decimal("64000.500320000000000000"), T0 - 123_456_789, Decimal("2.00000001"))
    assert archive.scalar("SELECT hex(raw) FROM dlq") == b"\x00\xffraw".hex().upper()
    assert client.query("SELECT inputs FROM signals").result_rows[0][0] in (
        [("features.book", 2, 7)], [{"topic": "features.book", "partition": 2, "offset": 7}])
    dead = client.query("SELECT topic, offset, unhex(hex(raw)) = {raw:String}, error FROM dead_letters "
                        "ORDER BY offset", parameters={"raw": "not avro at all"}).result_rows
    assert [(d[0], d[1]) for d in dead] == [("md.trades", o) for o in sorted(d[1] for d in dead)]
    assert any(d[2] and "framing" in d[3] for d in dead)
    assert any("carries Trade, got BBO" in d[3] for d in dead)
    assert any("decimal places" in d[3] for d in dead)
    for topic in Topic:
        assert archive.scalar(f"SELECT count() FROM v_{table_name(topic.value)}") == 1
    instrument = client.query("SELECT venue, symbol, base, quote, tick_size, lot_size FROM instruments").result_rows
    assert instrument == [("kraken", "BTC/USD", "BTC", "USD", Decimal("0.1"), Decimal("0.00000001"))]


def _trades(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    trades, t = [], T0 - T0 % 60_000_000_000
    for i in range(count):
        t += rng.choice([0, 1, rng.randrange(1, 400_000_000)])  # equal stamps happen: ties break on trade_id
        symbol = rng.choice(["BTCUSDT", "ETHUSDT"])
        price = f"{rng.randrange(6_000_000, 6_100_000) / 100:.2f}" if symbol == "BTCUSDT" else \
            f"{rng.randrange(300_000_000, 310_000_000) / 100_000:.5f}"
        qty = f"{rng.randrange(1, 10**8) / 10**8:.8f}"
        trades.append({"venue": "binance", "symbol": symbol, "trade_id": i, "price": price, "qty": qty,
                       "side": rng.choice(["buy", "sell"]), "ts_event": t, "ts_recv": t + 1000})
    return trades


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_ohlcv_1m_view_equals_pandas_resample_exactly(
    private_kafka: KafkaSettings, archive: Archive, threaded_sink: Callable[..., ThreadedSink]
) -> None:
    # Arrange
    trades = _trades(5_000, seed=11)
    produce(private_kafka, "md.trades", trades)
    sink = threaded_sink(archive, topics=["md.trades"], batch_max_rows=700)
    wait_for(lambda: archive.scalar("SELECT count() FROM md_trades") == len(trades), 60, "all trades archived")
    sink.stop()
    # Act
    rows = archive.client.query("SELECT symbol, bucket, open, high, low, close, volume, trades "
                                "FROM ohlcv_1m ORDER BY symbol, bucket").result_rows
    # Assert
    frame = pd.DataFrame(trades)
    frame["ts"] = pd.to_datetime(frame["ts_event"], unit="ns", utc=True)
    frame["price"] = frame["price"].map(Decimal)
    frame["qty"] = frame["qty"].map(Decimal)
    frame = frame.sort_values(["ts_event", "trade_id"]).set_index("ts")
    expected = []
    for symbol, group in frame.groupby("symbol"):
        bars = group.resample("1min").agg({"price": ["first", "max", "min", "last"], "qty": "sum",
                                           "trade_id": "count"})
        for bucket, bar in bars.iterrows():
            if bar[("trade_id", "count")] == 0:
                continue
            expected.append((symbol, bucket.to_pydatetime().replace(tzinfo=None), *(bar[("price", f)] for f in
                             ("first", "max", "min", "last")), bar[("qty", "sum")], int(bar[("trade_id", "count")])))
    got = [(r[0], r[1].replace(tzinfo=None), *r[2:7], int(r[7])) for r in rows]
    assert len(got) == len(expected) > 5
    assert got == expected
