"""Coinbase Advanced Trade parser: documented frames as fixed cases, and garbage (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers.coinbase.parse import parse_frame
from producers.errors import ParseError
from producers.venue import Batch, BookMessage, Channel
from schemas.serde import AvroSerde

FIXTURES = Path(__file__).parents[3] / "fixtures" / "coinbase"
RECV = 1_700_000_000_000_000_000


def _batch(name: str) -> Batch:
    channel, batch = parse_frame((FIXTURES / name).read_bytes().strip(), RECV)
    assert channel is Channel.BATCH and isinstance(batch, Batch)
    return batch


def test_l2_snapshot_is_a_book_message_with_bids_and_offers_and_the_sequence_number() -> None:
    batch = _batch("l2_snapshot.json")
    assert batch.sequence == 0
    ((channel, book),) = batch.items
    assert channel is Channel.BOOK and isinstance(book, BookMessage)
    assert book.snapshot and book.symbol == "BTC-USD" and book.checksum is None
    assert book.bids == [["21921.73", "0.06317902"], ["21921.3", "0.02"]]
    assert book.asks == [["21922.01", "0.5"]]
    assert book.ts_event == RECV


def test_l2_update_carries_new_quantity_and_event_time() -> None:
    batch = _batch("l2_update.json")
    ((_, book),) = batch.items
    assert batch.sequence == 1 and not book.snapshot
    assert book.bids == [["21921.3", "0"]]
    assert book.ts_event == 1675974770714964855


def test_market_trades_snapshot_is_put_in_trade_id_order_with_taker_side() -> None:
    batch = _batch("market_trades.json")
    trades = [t for _, t in batch.items]
    assert [t["trade_id"] for t in trades] == [0, 1]
    assert trades[1] == {
        "venue": "coinbase", "symbol": "ETH-USD", "trade_id": 1, "price": "1260.01", "qty": "0.3",
        "side": "buy", "ts_event": 1565815347265000000, "ts_recv": RECV,
    }
    serde = AvroSerde()
    assert serde.decode_as("Trade", serde.encode("Trade", trades[1])) == trades[1]


def test_ticker_is_a_bbo_keyed_by_the_message_time() -> None:
    ((channel, bbo),) = _batch("ticker.json").items
    assert channel is Channel.BBO
    assert (bbo["bid_price"], bbo["bid_qty"], bbo["ask_price"], bbo["ask_qty"]) == (
        "21931.98", "8000.21", "21933.98", "8038.07770938")
    assert bbo["update_id"] == 1675974637167359
    serde = AvroSerde()
    assert serde.decode_as("BBO", serde.encode("BBO", bbo)) == bbo


@pytest.mark.parametrize("name, seq", [("heartbeats.json", 0), ("subscriptions.json", 2)])
def test_heartbeats_and_subscriptions_are_empty_but_numbered(name: str, seq: int) -> None:
    batch = _batch(name)
    assert batch.items == [] and batch.sequence == seq


def test_error_frame_raises_with_coinbase_message() -> None:
    with pytest.raises(ParseError, match="venue error: Failed to subscribe"):
        parse_frame((FIXTURES / "error.json").read_bytes(), RECV)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(st.one_of(st.binary(max_size=200), _json.map(orjson.dumps)))
def test_garbage_raises_parse_error_only(data: bytes) -> None:
    try:
        parse_frame(data, RECV)
    except ParseError:
        pass


@given(st.fixed_dictionaries({
    "channel": st.sampled_from(["l2_data", "market_trades", "ticker", "heartbeats"]),
    "timestamp": st.sampled_from(["2023-02-09T20:32:50.714964855Z", "x", 3]),
    "sequence_num": st.one_of(st.integers(-5, 10), st.text(max_size=3)),
    "events": _json,
}).map(orjson.dumps))
def test_documented_channels_with_garbage_events_raise_parse_error_only(data: bytes) -> None:
    try:
        parse_frame(data, RECV)
    except ParseError:
        pass


def test_status_channel_gives_instrument_records() -> None:
    ((channel, instrument),) = _batch("status.json").items
    assert channel is Channel.INSTRUMENT
    assert instrument == {
        "venue": "coinbase", "symbol": "BTC-USD", "base": "BTC", "quote": "USD", "tick_size": "0.01",
        "lot_size": "0.00000001", "ts_event": RECV, "ts_recv": RECV,
    }
    serde = AvroSerde()
    assert serde.decode_as("Instrument", serde.encode("Instrument", instrument)) == instrument
