"""Per-instrument pipelines: staleness, replay dedup, throttling, bad input."""

from __future__ import annotations

from schemas.serde import AvroSerde
from schemas.topics import instrument_key
from streams.intake import Accepted, Rejected, check_input, parse_instruments
from streams.models.base import InputRef
from streams.models.ofi_microprice import OfiMicropriceModel
from streams.pipelines.book import BookConfig, BookInstrument
from streams.pipelines.trades import TradeInstrument

MS = 1_000_000
CFG = BookConfig(OfiMicropriceModel(), features_interval_ns=0, target_qty="0.001", signal_ttl_ns=1000 * MS)


def delta(uid: int, ts: int, snapshot: bool = False, bid_qty: str = "1") -> dict:
    return {
        "venue": "binance", "symbol": "BTCUSDT", "snapshot": snapshot, "first_update_id": uid,
        "last_update_id": uid, "bids": [{"price": "100", "qty": bid_qty}], "asks": [{"price": "101", "qty": "1"}],
        "ts_event": ts, "ts_recv": ts + 5,
    }


def health(kind: str, ts_recv: int) -> dict:
    return {"kind": kind, "ts_recv": ts_recv, "venue": "binance", "symbol": "BTCUSDT"}


def ref(offset: int) -> InputRef:
    return InputRef("md.book", 2, offset)


def test_health_stale_suppresses_features_until_recovered():
    # Arrange
    inst = BookInstrument()
    assert inst.on_delta(delta(1, 1000, snapshot=True), ref(0), CFG).features is not None
    # Act
    inst.on_health(health("stale", 2000))
    stale_out = inst.on_delta(delta(2, 3000), ref(1), CFG)
    inst.on_health(health("recovered", 4000))
    back = inst.on_delta(delta(3, 5000), ref(2), CFG)
    # Assert
    assert inst.stale is False
    assert stale_out.features is None and stale_out.note == "stale"
    assert back.features is not None and back.features["update_id"] == 3
    assert back.features["ts_recv"] == 5005


def test_snapshot_after_stale_event_clears_it_but_older_snapshot_does_not():
    inst = BookInstrument()
    inst.on_delta(delta(1, 1000, snapshot=True), ref(0), CFG)  # snapshot received at 1005
    inst.on_health(health("gap", 900))  # received before that snapshot: ignored
    assert not inst.stale
    inst.on_health(health("resync", 2000))
    assert inst.stale
    out = inst.on_delta(delta(10, 3000, snapshot=True), ref(1), CFG)
    assert not inst.stale and out.features is not None


def test_out_of_order_delta_is_an_error_and_gap_makes_book_stale():
    inst = BookInstrument()
    inst.on_delta(delta(5, 1000, snapshot=True), ref(0), CFG)
    assert inst.on_delta(delta(5, 2000), ref(1), CFG).error
    gap = inst.on_delta(delta(9, 3000), ref(2), CFG)
    assert gap.error is None and gap.features is None and inst.stale


def test_throttle_by_event_time():
    cfg = BookConfig(OfiMicropriceModel(), features_interval_ns=100, target_qty="1", signal_ttl_ns=1)
    inst = BookInstrument()
    emitted = [
        inst.on_delta(delta(i + 1, ts, snapshot=i == 0), ref(i), cfg).features is not None
        for i, ts in enumerate([0, 50, 99, 100, 150, 250])
    ]
    assert emitted == [True, False, False, True, False, True]


def test_seen_marks_replayed_offsets_and_state_round_trip_keeps_them():
    inst = BookInstrument()
    inst.mark(ref(7))
    restored = BookInstrument.from_state(inst.to_state())
    assert restored.seen(ref(7)) and restored.seen(ref(3)) and not restored.seen(ref(8))
    assert not restored.seen(InputRef("md.book", 1, 0))


def test_trade_pipeline_rejects_out_of_order_ids_and_reports_too_late_trades():
    inst = TradeInstrument(lateness_ns=0, flow_bucket_ns=100_000_000)
    t = {"venue": "binance", "symbol": "BTCUSDT", "price": "1", "qty": "1", "side": "buy", "ts_recv": 0}
    ok = inst.on_trade({**t, "trade_id": 1, "ts_event": 5_000_000_000})
    dup = inst.on_trade({**t, "trade_id": 1, "ts_event": 5_000_000_000})
    late = inst.on_trade({**t, "trade_id": 2, "ts_event": 1_000_000_000})
    assert ok.flow is not None and not ok.errors
    assert [r for r, _ in dup.errors] == ["out_of_order"] and dup.flow is None
    # too late for its 1 s bar, but its 1 m bar is still open
    assert len(late.errors) == 1 and late.errors[0][0] == "late_trade" and "1s" in late.errors[0][1]
    assert [label for label, _ in late.bars] == []
    assert late.flow is not None  # still a real trade for the flow windows


def test_intake_rejects_garbage_wrong_type_mismatched_key_and_unknown_instrument():
    serde = AvroSerde()
    trade = {"venue": "binance", "symbol": "BTCUSDT", "trade_id": 1, "price": "1", "qty": "1", "side": "buy",
             "ts_event": 1, "ts_recv": 2}
    raw = serde.encode("Trade", trade)
    key = instrument_key("binance", "BTCUSDT")
    allowed = parse_instruments("binance:BTCUSDT, binance:ETHUSDT")
    assert isinstance(check_input(serde, key, raw, "Trade", allowed), Accepted)
    assert check_input(serde, key, b"\x00garbage", "Trade", allowed).reason == "undecodable"
    assert check_input(serde, key, raw, "BookDelta", allowed).reason == "undecodable"
    wrong_key = check_input(serde, b"binance:ETHUSDT", raw, "Trade", allowed)
    assert isinstance(wrong_key, Rejected) and wrong_key.reason == "unknown_instrument"
    other = serde.encode("Trade", {**trade, "symbol": "DOGEUSDT"})
    assert check_input(serde, b"binance:DOGEUSDT", other, "Trade", allowed).reason == "unknown_instrument"
    assert isinstance(check_input(serde, b"binance:DOGEUSDT", other, "Trade", frozenset()), Accepted)


def test_intake_accepts_venue_wide_health_events_only_when_asked():
    serde = AvroSerde()
    event = {"event_id": "c1-1", "venue": "binance", "symbol": "", "kind": "disconnect", "connection_id": "c1",
             "detail": "", "ts_event": 1, "ts_recv": 1}
    raw = serde.encode("FeedEvent", event)
    allowed = parse_instruments("binance:BTCUSDT")
    assert isinstance(check_input(serde, b"binance:", raw, "FeedEvent", allowed, venue_wide_ok=True), Accepted)
    assert check_input(serde, b"binance:", raw, "FeedEvent", allowed).reason == "unknown_instrument"


def test_intake_rejects_unusable_numbers():
    serde = AvroSerde()
    key = instrument_key("binance", "BTCUSDT")
    trade = {"venue": "binance", "symbol": "BTCUSDT", "trade_id": 1, "price": "1", "qty": "1", "side": "buy",
             "ts_event": 1, "ts_recv": 2}
    for price, qty in (("NaN", "1"), ("abc", "1"), ("0", "1"), ("1", "0"), ("1", "-2"), ("Infinity", "1"),
                       ("1e3", "1"), ("1", "1E-8"), ("+1", "1"), (" 1", "1"), ("1.", "1"), ("", "1")):
        raw = serde.encode("Trade", {**trade, "price": price, "qty": qty})
        assert check_input(serde, key, raw, "Trade", frozenset()).reason == "invalid_record", (price, qty)
    delta = {"venue": "binance", "symbol": "BTCUSDT", "snapshot": False, "first_update_id": 1, "last_update_id": 1,
             "bids": [{"price": "1", "qty": "0"}], "asks": [{"price": "x", "qty": "1"}], "ts_event": 1, "ts_recv": 1}
    assert check_input(serde, key, serde.encode("BookDelta", delta), "BookDelta", frozenset()).reason == "invalid_record"
    delta["asks"] = [{"price": "2", "qty": "0"}]
    assert isinstance(check_input(serde, key, serde.encode("BookDelta", delta), "BookDelta", frozenset()), Accepted)
    # a zero written with an exponent would read as a level to the book, which knows zero by its text
    delta["asks"] = [{"price": "2", "qty": "0E-8"}]
    assert check_input(serde, key, serde.encode("BookDelta", delta), "BookDelta", frozenset()).reason == "invalid_record"


def bbo(uid: int, ts: int, bid: str = "100.5", ask: str = "101", bid_qty: str = "3") -> dict:
    return {"venue": "binance", "symbol": "BTCUSDT", "update_id": uid, "bid_price": bid, "bid_qty": bid_qty,
            "ask_price": ask, "ask_qty": "1", "ts_event": ts, "ts_recv": ts + 5}


def test_a_bbo_newer_than_the_book_gives_features_of_its_top_and_no_signal():
    # Arrange: book 100 x 101 at update 1
    inst = BookInstrument()
    inst.on_delta(delta(1, 1000, snapshot=True), ref(0), CFG)
    # Act
    old = inst.on_bbo(bbo(1, 1500), CFG)
    new = inst.on_bbo(bbo(2, 2000), CFG)
    # Assert: update 1 is in the book already; update 2 moves the best bid up to 100.5 (qty 3)
    assert old.features is None and old.note == "bbo not newer than book"
    assert new.signal is None and new.features is not None
    assert new.features["update_id"] == 2 and new.features["ts_recv"] == 2005
    assert new.features["mid"] == (100.5 + 101) / 2 and new.features["imbalance_1"] == (3 - 1) / (3 + 1)
    assert inst.book.last_update_id == 1 and inst.book.bids.prices == [100]  # the book is unchanged


def test_a_bbo_gives_nothing_while_stale_crossed_or_throttled():
    inst = BookInstrument()
    assert inst.on_bbo(bbo(1, 1000), CFG).note == "stale"  # no snapshot yet
    inst.on_delta(delta(1, 1000, snapshot=True), ref(0), CFG)
    assert inst.on_bbo(bbo(2, 2000, bid="101", ask="101"), CFG).note == "crossed or one-sided book"
    throttled = BookConfig(OfiMicropriceModel(), features_interval_ns=100, target_qty="1", signal_ttl_ns=1)
    assert inst.on_bbo(bbo(3, 3000), throttled).features is not None
    assert inst.on_bbo(bbo(4, 3050), throttled).features is None
    assert inst.on_delta(delta(2, 3099), ref(1), throttled).features is None
    assert inst.on_bbo(bbo(6, 3100), throttled).features is not None


def test_intake_rejects_a_bbo_with_unusable_numbers():
    serde = AvroSerde()
    key = instrument_key("binance", "BTCUSDT")
    good = bbo(1, 1)
    assert isinstance(check_input(serde, key, serde.encode("BBO", good), "BBO", frozenset()), Accepted)
    for change in ({"bid_price": "NaN"}, {"ask_qty": "-1"}, {"ask_price": "0"}):
        raw = serde.encode("BBO", {**good, **change})
        assert check_input(serde, key, raw, "BBO", frozenset()).reason == "invalid_record", change
