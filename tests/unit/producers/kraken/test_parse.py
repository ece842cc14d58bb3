"""Kraken v2 parser: Kraken's documented frames, precision formatting, and garbage (hypothesis)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers.errors import ParseError
from producers.kraken.parse import KrakenParser, fmt
from producers.times import rfc3339_ns
from producers.venue import Batch, BookMessage, Channel
from schemas.serde import AvroSerde

FIXTURES = Path(__file__).parents[3] / "fixtures" / "kraken"
RECV = 1_700_000_000_000_000_000


def _frame(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().strip()


def _parser() -> KrakenParser:
    parser = KrakenParser()
    channel, batch = parser.parse_frame(_frame("instrument.json"), RECV)
    assert channel is Channel.BATCH
    assert [item for _, item in batch.items] == [{
        "venue": "kraken", "symbol": "BTC/USD", "base": "BTC", "quote": "USD", "tick_size": "0.1",
        "lot_size": "0.00000001", "ts_event": RECV, "ts_recv": RECV,
    }]
    return parser


def test_instrument_channel_gives_pair_precisions() -> None:
    parser = _parser()
    pair = parser.pairs["BTC/USD"]
    assert (pair.base, pair.quote, pair.price_precision, pair.qty_precision) == ("BTC", "USD", 1, 8)
    assert (pair.price_increment, pair.qty_increment) == ("0.1", "0.00000001")


def test_documented_snapshot_keeps_the_pair_precision_text() -> None:
    # Act
    channel, book = _parser().parse_frame(_frame("book_snapshot.json"), RECV)
    # Assert
    assert channel is Channel.BOOK and isinstance(book, BookMessage)
    assert book.snapshot and book.symbol == "BTC/USD" and book.checksum == 3310070434
    assert book.bids[0] == ["45283.5", "0.10000000"] and book.bids[3] == ["45281.0", "0.10000000"]
    assert book.asks[0] == ["45285.2", "0.00100000"]
    assert book.ts_event == RECV  # snapshots carry no timestamp


def test_documented_update_without_known_precision_keeps_venue_text() -> None:
    channel, book = KrakenParser().parse_frame(_frame("book_update.json"), RECV)
    assert channel is Channel.BOOK and not book.snapshot
    assert book.bids == [["0.5657", "1098.3947558"]] and book.asks == []
    assert book.ts_event == rfc3339_ns("2023-10-06T17:35:55.440295Z") == 1696613755440295000


def test_documented_trade_frame_is_a_batch_of_trade_records() -> None:
    # Act
    channel, batch = KrakenParser().parse_frame(_frame("trade.json"), RECV)
    # Assert
    assert channel is Channel.BATCH and isinstance(batch, Batch) and batch.sequence is None
    trades = [t for _, t in batch.items]
    assert trades[0] == {
        "venue": "kraken", "symbol": "MATIC/USD", "trade_id": 4665846, "price": "0.5147", "qty": "6423.46326",
        "side": "buy", "ts_event": 1695628116925533000, "ts_recv": RECV,
    }
    assert trades[1]["trade_id"] == 4665847
    serde = AvroSerde()
    assert serde.decode_as("Trade", serde.encode("Trade", trades[0])) == trades[0]


def test_ticker_is_a_bbo_with_microsecond_timestamp_as_update_id() -> None:
    channel, bbo = KrakenParser().parse_frame(_frame("ticker.json"), RECV)
    assert channel is Channel.BBO
    assert (bbo["bid_price"], bbo["bid_qty"], bbo["ask_price"], bbo["ask_qty"]) == ("0.10025", "740.0", "0.10035", "740.0")
    assert bbo["update_id"] == 1696613755440295
    serde = AvroSerde()
    assert serde.decode_as("BBO", serde.encode("BBO", bbo)) == bbo


@pytest.mark.parametrize("name", ["heartbeat.json", "status.json", "subscribe_ack.json"])
def test_control_frames(name: str) -> None:
    assert KrakenParser().parse_frame(_frame(name), RECV) == (Channel.CONTROL, None)


def test_subscribe_error_raises_with_krakens_words() -> None:
    with pytest.raises(ParseError, match="venue error: subscribe refused: Currency pair not supported XBT/ZZZ"):
        KrakenParser().parse_frame(_frame("subscribe_error.json"), RECV)


def test_price_off_the_pair_grid_is_refused() -> None:
    parser = _parser()
    frame = _frame("book_snapshot.json").replace(b"45283.5,", b"45283.55,", 1)
    with pytest.raises(ParseError, match="more than the pair's 1 decimals"):
        parser.parse_frame(frame, RECV)


@given(st.decimals(min_value=0, max_value=10**12, places=8, allow_nan=False, allow_infinity=False), st.integers(8, 12))
def test_fmt_keeps_the_value_and_writes_exactly_the_precision(value: Decimal, precision: int) -> None:
    # Act
    text = fmt(format(value, "f"), precision, "x")
    # Assert
    assert Decimal(text) == value
    assert len(text.partition(".")[2]) == precision
    assert not text.startswith("0") or text.startswith("0.")


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(st.one_of(st.binary(max_size=200), _json.map(orjson.dumps)))
def test_garbage_raises_parse_error_only(data: bytes) -> None:
    try:
        _parser().parse_frame(data, RECV)
    except ParseError:
        pass


@given(st.fixed_dictionaries({
    "channel": st.sampled_from(["book", "trade", "ticker", "instrument"]),
    "type": st.sampled_from(["snapshot", "update", "x"]),
    "data": _json,
}).map(orjson.dumps))
def test_documented_channels_with_garbage_data_raise_parse_error_only(data: bytes) -> None:
    try:
        _parser().parse_frame(data, RECV)
    except ParseError:
        pass
