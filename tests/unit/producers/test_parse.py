"""Binance parser: documented example frames, envelopes, and garbage (hypothesis)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from producers.binance.parse import parse_exchange_info, parse_frame, parse_snapshot
from producers.errors import ParseError
from producers.venue import Channel
from schemas.serde import AvroSerde

FIXTURES = Path(__file__).parents[2] / "fixtures" / "binance"
RECV = 1_700_000_000_000_000_000


def _frame(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().strip()


def test_documented_trade_frame_becomes_trade_record_with_exact_strings() -> None:
    # Act
    channel, trade = parse_frame(_frame("trade.json"), RECV)
    # Assert
    assert channel is Channel.TRADE
    assert trade == {
        "venue": "binance", "symbol": "BNBBTC", "trade_id": 12345, "price": "0.001", "qty": "100",
        "side": "sell", "ts_event": 1672515782136 * 1_000_000, "ts_recv": RECV,
    }
    assert AvroSerde().decode_as("Trade", AvroSerde().encode("Trade", trade)) == trade


def test_buyer_taker_trade_is_a_buy() -> None:
    msg = orjson.loads(_frame("trade.json"))
    msg["m"] = False
    assert parse_frame(orjson.dumps(msg), RECV)[1]["side"] == "buy"


def test_combined_envelope_parses_like_the_raw_frame() -> None:
    assert parse_frame(_frame("combined_trade.json"), RECV) == parse_frame(_frame("trade.json"), RECV)


def test_documented_depth_update_becomes_diff() -> None:
    channel, diff = parse_frame(_frame("depth_update.json"), RECV)
    assert channel is Channel.DEPTH
    assert (diff.symbol, diff.first_id, diff.last_id) == ("BNBBTC", 157, 160)
    assert diff.bids == [["0.0024", "10"]] and diff.asks == [["0.0026", "100"]]
    assert diff.ts_event == 1672515782136 * 1_000_000 and diff.ts_recv == RECV


def test_documented_book_ticker_becomes_bbo_stamped_with_receive_time() -> None:
    channel, bbo = parse_frame(_frame("book_ticker.json"), RECV)
    assert channel is Channel.BBO
    assert bbo["update_id"] == 400900217 and bbo["bid_price"] == "25.35190000" and bbo["ask_qty"] == "40.66000000"
    assert bbo["ts_event"] == RECV
    AvroSerde().encode("BBO", bbo)


def test_server_shutdown_and_subscribe_ack_are_control_frames() -> None:
    assert parse_frame(_frame("server_shutdown.json"), RECV)[0] is Channel.SHUTDOWN
    assert parse_frame(b'{"e":"serverShutdown","E":1}', RECV)[0] is Channel.SHUTDOWN
    assert parse_frame(b'{"result":null,"id":1}', RECV)[0] is Channel.CONTROL


def test_documented_snapshot_parses() -> None:
    snap = parse_snapshot(_frame("depth_snapshot.json"), "BNBBTC", RECV)
    assert snap.last_update_id == 1027024 and snap.bids == [["4.00000000", "431.00000000"]]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1,2]", "not a JSON object"),
        (b'{"e":"trade","s":"BNBBTC"}', "without field"),
        (b'{"e":"kline","s":"BNBBTC"}', "unknown frame type"),
        (b'{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"1e5","q":"1","T":1,"m":true}', "invalid decimal"),
        (b'{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"NaN","q":"1","T":1,"m":true}', "invalid decimal"),
        (b'{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":1.5,"q":"1","T":1,"m":true}', "invalid decimal"),
        (b'{"e":"trade","E":1,"s":"BNBBTC","t":-1,"p":"1","q":"1","T":1,"m":true}', "invalid integer"),
        (b'{"e":"depthUpdate","E":1,"s":"X","U":5,"u":4,"b":[],"a":[]}', "U 5 > u 4"),
        (b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":4,"b":[["1"]],"a":[]}', "invalid level"),
        (b'{"error":{"code":2,"msg":"Invalid request"},"id":1}', "venue error"),
    ],
)
def test_malformed_frames_raise_parse_error_with_reason(frame: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_frame(frame, RECV)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(
        ["e", "E", "s", "t", "p", "q", "T", "m", "U", "u", "b", "a", "B", "A", "stream", "data", "result", "id"]
    ), children, max_size=8),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=200), _json.map(lambda v: json.dumps(v).encode())))
def test_garbage_never_raises_anything_but_parse_error(data: bytes) -> None:
    try:
        channel, payload = parse_frame(data, RECV)
    except ParseError:
        return
    # whatever parses must be a record that fits its Avro schema
    if channel is Channel.TRADE:
        AvroSerde().encode("Trade", payload)
    elif channel is Channel.BBO:
        AvroSerde().encode("BBO", payload)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.binary(max_size=100), _json.map(lambda v: json.dumps(v).encode())))
def test_garbage_snapshot_never_raises_anything_but_parse_error(data: bytes) -> None:
    try:
        parse_snapshot(data, "BTCUSDT", RECV)
    except ParseError:
        pass


def test_binance_rest_errors_are_classified_retriable_or_not() -> None:
    from producers.binance.errors import http_error

    assert not http_error(400, b'{"code":-1121,"msg":"Invalid symbol."}').retriable
    assert http_error(429, b'{"code":-1003,"msg":"Too many requests"}').retriable
    assert http_error(503, b"<html>").retriable


_num = st.one_of(
    st.integers(0, 9_000_000_000_000), st.integers(0, 9_000_000_000_000), st.integers(-5, 2**64),
    st.sampled_from([0, 2**53, 2**53 + 1, 9_000_000_000_000, 9_000_000_000_001, 10**15, 10**15 - 1]),
)
_valid_dec = st.from_regex(r"[0-9]{1,30}(\.[0-9]{1,30})?", fullmatch=True)
_dec = st.one_of(_valid_dec, _valid_dec, _valid_dec, _valid_dec, st.text(max_size=6), st.integers())
_sym = st.one_of(st.from_regex(r"[A-Z0-9]{1,31}", fullmatch=True), st.text(max_size=5))


def _same_outcome(frame: dict[str, Any], envelope: bool) -> None:
    if envelope:
        frame = {"stream": "btcusdt@trade", "data": frame}
    text = json.dumps(frame, separators=(",", ":"))
    try:
        slow = parse_frame(text.encode(), RECV)  # bytes: the general path
    except ParseError:
        slow = None
    try:
        fast = parse_frame(text, RECV)  # str: the fast path when the layout matches
    except ParseError:
        fast = None
    event(f"parsed: {slow is not None}")
    assert fast == slow


@settings(max_examples=300, deadline=None)
@given(_num, _sym, _num, _dec, _dec, _num, st.booleans(), st.booleans())
def test_fast_trade_path_agrees_with_the_general_parser(
    e: int, s: str, t: int, p: Any, q: Any, tt: int, m: bool, envelope: bool
) -> None:
    _same_outcome({"e": "trade", "E": e, "s": s, "t": t, "p": p, "q": q, "T": tt, "m": m, "M": True}, envelope)


@settings(max_examples=300, deadline=None)
@given(_num, _sym, _dec, _dec, _dec, _dec, st.booleans())
def test_fast_book_ticker_path_agrees_with_the_general_parser(
    u: int, s: str, b: Any, bq: Any, a: Any, aq: Any, envelope: bool
) -> None:
    _same_outcome({"u": u, "s": s, "b": b, "B": bq, "a": a, "A": aq}, envelope)


def test_fast_path_parses_every_recorded_simulator_frame_like_the_general_parser() -> None:
    from producers.recording import read_recording

    frames = [data for _, kind, _, data in read_recording(FIXTURES / "sim_recording.jsonl") if kind == "ws"]
    assert len(frames) > 100
    for data in frames:
        assert parse_frame(data, RECV) == parse_frame(data.encode(), RECV)


_edge_dec = st.sampled_from(["1\u00e9", "1\\u0030", '1"', "0.5", "1.", ".5", "", "-1", "1" * 30, "1" * 31,
                             "0." + "1" * 30, "0." + "1" * 31, "1" * 30 + "." + "1" * 30])
_level_item = st.one_of(_valid_dec, _edge_dec, _edge_dec, st.integers(), st.none(), st.lists(_valid_dec, max_size=2))
_good_level = st.lists(_valid_dec, min_size=2, max_size=2)
_any_level = st.one_of(st.lists(_level_item, min_size=2, max_size=2), st.lists(_level_item, min_size=2, max_size=2),
                       st.lists(_level_item, max_size=3), _level_item)


def _valid_level(level: Any) -> bool:
    return (type(level) is list and len(level) == 2
            and all(type(x) is str and re.fullmatch(r"[0-9]{1,30}(\.[0-9]{1,30})?", x) for x in level))


@settings(max_examples=300, deadline=None)
@given(st.lists(_good_level, max_size=8), st.lists(_good_level, max_size=8), st.booleans(), st.integers(0, 8), _any_level)
def test_depth_levels_are_accepted_exactly_when_every_level_is_two_valid_decimals(
    bids: list[Any], asks: list[Any], in_bids: bool, at: int, odd: Any
) -> None:
    # the whole-list check (one regex over orjson's re-serialization) must agree with the level rule;
    # one level anywhere in otherwise valid lists is drawn from anything (often a valid one too)
    (bids if in_bids else asks).insert(at, odd)
    frame = json.dumps({"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 1, "u": 2, "b": bids, "a": asks}).encode()
    valid = _valid_level(odd)
    event(f"valid: {valid}")
    try:
        _, diff = parse_frame(frame, RECV)
    except ParseError as exc:
        assert not valid, exc.reason
        assert "level" in exc.reason or "decimal" in exc.reason
        return
    assert valid
    assert (diff.bids, diff.asks) == (bids, asks)


def test_documented_exchange_info_becomes_the_instrument_record() -> None:
    # Arrange: Binance's exchangeInfo example, trimmed to the fields read
    body = orjson.dumps({"timezone": "UTC", "serverTime": 1565246363776, "symbols": [{
        "symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "BTC", "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.00000100", "maxPrice": "100000.00000000",
             "tickSize": "0.00000100"},
            {"filterType": "LOT_SIZE", "minQty": "0.00100000", "maxQty": "100000.00000000", "stepSize": "0.00100000"},
        ]}]})
    # Act
    record = parse_exchange_info(body, "ETHBTC", RECV)
    # Assert
    assert record == {
        "venue": "binance", "symbol": "ETHBTC", "base": "ETH", "quote": "BTC", "tick_size": "0.00000100",
        "lot_size": "0.00100000", "ts_event": 1565246363776 * 1_000_000, "ts_recv": RECV,
    }
    with pytest.raises(ParseError, match="without symbol BNBBTC"):
        parse_exchange_info(body, "BNBBTC", RECV)
