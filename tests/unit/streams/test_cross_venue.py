"""The cross-venue pipeline: consolidated BBO, mids in bps, stale venues, emission rule, replay, state round trip."""

from __future__ import annotations

from decimal import Decimal

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.serde import AvroSerde
from streams.models.base import InputRef
from streams.pipelines.cross_venue import PairState, bps_of, mid_of
from tests.unit.streams.cross_reference import Reference, as_view, emission_key

MS = 1_000_000
VENUES = [("binance", "BTCUSDT"), ("kraken", "BTC/USDT"), ("coinbase", "BTC-USDT")]


def bbo(venue: str, symbol: str, bid: str, ask: str, ts: int, bid_qty: str = "1", ask_qty: str = "2") -> dict:
    return {"venue": venue, "symbol": symbol, "update_id": ts, "bid_price": bid, "bid_qty": bid_qty,
            "ask_price": ask, "ask_qty": ask_qty, "ts_event": ts - 7, "ts_recv": ts}


def health(venue: str, symbol: str, kind: str, ts: int) -> dict:
    return {"event_id": f"e{ts}", "venue": venue, "symbol": symbol, "kind": kind, "connection_id": "c1",
            "detail": "", "first_update_id": None, "last_update_id": None, "count": 0, "ts_event": ts, "ts_recv": ts}


def test_consolidated_bid_ask_mid_and_bps_by_hand():
    # Arrange: binance 100/101, kraken 100.5/101.5, coinbase 99/100.9
    pair = PairState("BTC/USDT", "BTC", "USDT")
    # Act
    pair.on_bbo(bbo("binance", "BTCUSDT", "100", "101", 10), InputRef("md.bbo", 0, 0), 0, 0)
    pair.on_bbo(bbo("kraken", "BTC/USDT", "100.5", "101.5", 20), InputRef("md.bbo", 1, 0), 0, 0)
    out = pair.on_bbo(bbo("coinbase", "BTC-USDT", "99", "100.9", 30, ask_qty="0.5"), InputRef("md.bbo", 2, 0), 0, 0)
    # Assert: best bid kraken 100.5, best ask coinbase 100.9, mid 100.7
    rec = out.record
    assert rec is not None
    assert (rec["bid_price"], rec["bid_venues"], rec["bid_qty"]) == ("100.5", "kraken", "1")
    assert (rec["ask_price"], rec["ask_venues"], rec["ask_qty"]) == ("100.9", "coinbase", "0.5")
    assert rec["mid"] == "100.7"
    # binance mid 100.5: (100.5 - 100.7) / 100.7 * 1e4 = -19.86097... -> -19.8610
    # kraken mid 101: 29.79145... -> 29.7915; coinbase mid 99.95: -74.47864... -> -74.4786
    assert [(q["venue"], q["mid"], q["bps_vs_mid"]) for q in rec["quotes"]] == [
        ("binance", "100.5", "-19.861"), ("coinbase", "99.95", "-74.4786"), ("kraken", "101", "29.7915"),
    ]
    assert rec["stale"] == []
    assert (rec["trigger_venue"], rec["source_topic"], rec["source_partition"], rec["ts_recv"]) == ("coinbase", "md.bbo", 2, 30)


def test_tied_best_bid_sums_sizes_and_names_both_venues():
    pair = PairState("BTC/USDT", "BTC", "USDT")
    pair.on_bbo(bbo("binance", "BTCUSDT", "100", "101", 10, bid_qty="1.25"), InputRef("md.bbo", 0, 0), 0, 0)
    rec = pair.on_bbo(bbo("kraken", "BTC/USDT", "100.0", "102", 20, bid_qty="0.75"), InputRef("md.bbo", 1, 0), 0, 0).record
    assert rec is not None
    assert (rec["bid_price"], rec["bid_qty"], rec["bid_venues"]) == ("100", "2", "binance,kraken")
    assert (rec["ask_price"], rec["ask_venues"]) == ("101", "binance")


def test_health_stale_venue_drops_out_is_named_and_returns_on_recovered():
    # Arrange
    pair = PairState("BTC/USDT", "BTC", "USDT")
    pair.on_bbo(bbo("binance", "BTCUSDT", "100", "101", 10), InputRef("md.bbo", 0, 0), 0, 0)
    pair.on_bbo(bbo("kraken", "BTC/USDT", "100.5", "101.5", 20), InputRef("md.bbo", 1, 0), 0, 0)
    # Act 1: kraken's book goes stale (a gap)
    stale = pair.on_health(health("kraken", "BTC/USDT", "gap", 30), InputRef("md.health", 1, 0), 0, 0).record
    # Assert 1: binance alone makes the view; kraken is named with the reason and the event's time
    assert stale is not None
    assert (stale["bid_price"], stale["ask_price"], stale["mid"]) == ("100", "101", "100.5")
    assert [q["venue"] for q in stale["quotes"]] == ["binance"]
    assert stale["stale"] == [{"venue": "kraken", "symbol": "BTC/USDT", "reason": "health:gap", "since": 30}]
    # Act 2: kraken quotes while stale (no change to the view), then recovers
    quiet = pair.on_bbo(bbo("kraken", "BTC/USDT", "100.6", "101.5", 40), InputRef("md.bbo", 1, 1), 0, 0)
    back = pair.on_health(health("kraken", "BTC/USDT", "recovered", 50), InputRef("md.health", 1, 1), 0, 0).record
    # Assert 2
    assert quiet.record is None and quiet.note == "view_unchanged"
    assert back is not None and back["stale"] == [] and back["bid_price"] == "100.6"
    # an old stale event (before the recovery) read late changes nothing
    late = pair.on_health(health("kraken", "BTC/USDT", "stale", 45), InputRef("md.health", 3, 0), 0, 0)
    assert late.record is None


def test_silent_venue_drops_out_after_max_age_and_returns_with_a_bbo():
    pair = PairState("BTC/USDT", "BTC", "USDT")
    pair.on_bbo(bbo("binance", "BTCUSDT", "100", "101", 1000 * MS), InputRef("md.bbo", 0, 0), 5000 * MS, 0)
    # Act: kraken quotes 6 s later; binance's last BBO is older than 5 s on the pair's clock
    rec = pair.on_bbo(bbo("kraken", "BTC/USDT", "100.5", "101.5", 7000 * MS), InputRef("md.bbo", 1, 0), 5000 * MS, 0).record
    assert rec is not None
    assert rec["stale"] == [{"venue": "binance", "symbol": "BTCUSDT", "reason": "no_bbo", "since": 1000 * MS}]
    assert rec["bid_venues"] == "kraken"
    back = pair.on_bbo(bbo("binance", "BTCUSDT", "100", "101", 7001 * MS), InputRef("md.bbo", 0, 1), 5000 * MS, 0).record
    assert back is not None and back["stale"] == [] and back["bid_venues"] == "kraken"
    assert [q["venue"] for q in back["quotes"]] == ["binance", "kraken"]


def test_crossed_venue_bbo_is_left_out():
    pair = PairState("BTC/USDT", "BTC", "USDT")
    pair.on_bbo(bbo("binance", "BTCUSDT", "100", "101", 10), InputRef("md.bbo", 0, 0), 0, 0)
    rec = pair.on_bbo(bbo("kraken", "BTC/USDT", "102", "101.5", 20), InputRef("md.bbo", 1, 0), 0, 0).record
    assert rec is not None and rec["bid_price"] == "100"
    assert rec["stale"] == [{"venue": "kraken", "symbol": "BTC/USDT", "reason": "crossed_bbo", "since": 20}]


def test_only_changes_of_the_view_are_emitted_and_the_throttle_holds_them():
    pair = PairState("BTC/USDT", "BTC", "USDT")
    first = pair.on_bbo(bbo("binance", "BTCUSDT", "100", "101", 10), InputRef("md.bbo", 0, 0), 0, 0)
    same_prices = pair.on_bbo(bbo("binance", "BTCUSDT", "100", "101", 11, bid_qty="7"), InputRef("md.bbo", 0, 1), 0, 0)
    assert first.record is not None and same_prices.record is None
    throttled = PairState("BTC/USDT", "BTC", "USDT")
    assert throttled.on_bbo(bbo("binance", "BTCUSDT", "100", "101", 0), InputRef("md.bbo", 0, 0), 0, 10).record
    assert throttled.on_bbo(bbo("binance", "BTCUSDT", "100.1", "101", 5), InputRef("md.bbo", 0, 1), 0, 10).note == "throttled"
    assert throttled.on_bbo(bbo("binance", "BTCUSDT", "100.1", "101", 10), InputRef("md.bbo", 0, 2), 0, 10).record


def test_replayed_input_is_recognised_by_its_source_offset():
    pair = PairState("BTC/USDT", "BTC", "USDT")
    ref = InputRef("md.bbo", 3, 41)
    pair.on_bbo(bbo("binance", "BTCUSDT", "100", "101", 10), ref, 0, 0)
    pair.mark(ref)
    assert pair.seen(ref) and pair.seen(InputRef("md.bbo", 3, 40))
    assert not pair.seen(InputRef("md.bbo", 3, 42)) and not pair.seen(InputRef("md.bbo", 2, 0))


def test_bps_rounds_half_even_from_the_exact_ratio():
    assert bps_of(Decimal("100.01"), Decimal(100)) == Decimal("1.0000")
    assert bps_of(Decimal("100.000025"), Decimal(100)) == Decimal("0.0025")
    # exact tie at the 5th decimal: 0.00005 bps rounds to even (0.0000), 0.00015 to 0.0002
    assert bps_of(Decimal("100.0000005"), Decimal(100)) == Decimal("0.0000")
    assert bps_of(Decimal("100.0000015"), Decimal(100)) == Decimal("0.0002")
    assert bps_of(Decimal("99.9999985"), Decimal(100)) == Decimal("-0.0002")
    assert bps_of(Decimal("100.0000025"), Decimal(100)) == Decimal("0.0002")  # 0.00025: half to even
    assert mid_of(Decimal("0.00000001"), Decimal("0.00000002")) == Decimal("0.000000015")


PRICES = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(99999), places=4, allow_nan=False)
QTYS = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1000), places=4, allow_nan=False)


@st.composite
def inputs(draw: st.DrawFn) -> list[tuple[str, dict]]:
    events: list[tuple[str, dict]] = []
    ts = 0
    for _ in range(draw(st.integers(1, 30))):
        ts += draw(st.integers(0, 3000)) * MS
        venue, symbol = draw(st.sampled_from(VENUES))
        if draw(st.integers(0, 5)) == 0:
            kind = draw(st.sampled_from(["stale", "gap", "resync", "crossed", "recovered", "connect"]))
            events.append(("md.health", health(venue, symbol, kind, ts)))
        else:
            bid = draw(PRICES)
            ask = bid + draw(st.decimals(min_value=Decimal("-0.5"), max_value=Decimal(50), places=4))
            if ask <= 0:
                ask = bid
            events.append(("md.bbo", bbo(venue, symbol, format(bid, "f"), format(ask, "f"), ts,
                                          format(draw(QTYS), "f"), format(draw(QTYS), "f"))))
    return events


@settings(max_examples=300, deadline=None)
@given(events=inputs(), max_age_ms=st.sampled_from([0, 2000, 5000]))
def test_every_record_equals_the_brute_force_view_and_every_view_change_is_emitted(events, max_age_ms):
    # Arrange
    pair = PairState("BTC/USDT", "BTC", "USDT")
    ref_model = Reference(max_age_ms * MS)
    serde = AvroSerde()
    last = None
    for i, (topic, rec) in enumerate(events):
        # Act (the state goes through its changelog form every step, as after a restart)
        pair = PairState.from_state(orjson.loads(orjson.dumps(pair.to_state())))
        fn = pair.on_bbo if topic == "md.bbo" else pair.on_health
        out = fn(rec, InputRef(topic, 0, i), max_age_ms * MS, 0)
        ref_model.apply(topic, rec)
        expected = ref_model.view()
        # Assert: a record exactly when the view changed, equal to the brute force
        if expected is None or emission_key(expected) == last:
            assert out.record is None
            continue
        assert out.record is not None, (i, expected)
        assert as_view(out.record) == expected
        assert serde.decode_as("CrossVenueBBO", serde.encode("CrossVenueBBO", {**out.record, "ts_emit": 1}))
        last = emission_key(expected)
