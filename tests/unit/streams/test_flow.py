"""Bucketed rolling-window flow features against a brute-force recomputation over the raw trades."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.features.flow import SECOND_NS, FlowState
from streams.pipelines.trades import TradeInstrument

T0 = 1_700_000_000 * SECOND_NS
MS = 1_000_000
BUCKET_NS = 100 * MS


def brute(trades: list[dict], width_s: int, bucket_ns: int) -> dict[str, float]:
    """The window definition applied to the raw trades: buckets in (B - W/bucket, B], B the newest bucket."""
    newest = max(t["ts_event"] for t in trades) // bucket_ns
    n = width_s * SECOND_NS // bucket_ns
    inside = [k for k, t in enumerate(trades) if t["ts_event"] // bucket_ns > newest - n]
    buy = sum((Decimal(trades[k]["qty"]) for k in inside if trades[k]["side"] == "buy"), Decimal(0))
    sell = sum((Decimal(trades[k]["qty"]) for k in inside if trades[k]["side"] == "sell"), Decimal(0))
    nb = sum(1 for k in inside if trades[k]["side"] == "buy")
    ns = len(inside) - nb
    quote = sum((Decimal(trades[k]["price"]) * Decimal(trades[k]["qty"]) for k in inside), Decimal(0))
    # each return belongs to the later trade, from the trade applied just before it (arrival order)
    r2 = sum(math.log(float(trades[k]["price"]) / float(trades[k - 1]["price"])) ** 2 for k in inside if k > 0)
    return {
        "vi": float((buy - sell) / (buy + sell)) if buy + sell else 0.0,
        "ci": (nb - ns) / len(inside) if inside else 0.0,
        "signed": float(buy - sell),
        "vwap": float(quote / (buy + sell)) if buy + sell else 0.0,
        "rv": math.sqrt(r2),
    }


trades_st = st.lists(
    st.tuples(
        st.integers(-1500, 3000),  # gap to the previous trade, ms; negative = a late trade
        st.integers(1, 5000).map(lambda c: str(Decimal(c) / 100)),
        st.integers(1, 1000).map(lambda c: str(Decimal(c) / 1000)),
        st.sampled_from(["buy", "sell"]),
    ),
    min_size=1, max_size=150,
)
bucket_st = st.sampled_from([1 * MS, 100 * MS, 250 * MS, SECOND_NS])


def make_trades(raw: list) -> list[dict]:
    trades, ts = [], T0
    for i, (gap_ms, price, qty, side) in enumerate(raw):
        ts += gap_ms * MS
        trades.append({"trade_id": i, "ts_event": ts, "ts_recv": ts, "price": price, "qty": qty, "side": side})
    return trades


@settings(max_examples=150, deadline=None)
@given(trades_st, bucket_st)
def test_windows_match_brute_force_over_the_bucket_aligned_last_1_10_60_seconds(raw, bucket_ns):
    # Arrange
    state, seen = FlowState(bucket_ns), []
    for t in make_trades(raw):
        seen.append(t)
        # Act
        f = state.add(t).fields
        # Assert
        for w in (1, 10, 60):
            ref = brute(seen, w, bucket_ns)
            assert f[f"volume_imbalance_{w}s"] == ref["vi"]
            assert abs(f[f"count_imbalance_{w}s"] - ref["ci"]) < 1e-12
        ref60 = brute(seen, 60, bucket_ns)
        assert f["signed_volume_60s"] == ref60["signed"]
        assert f["vwap_60s"] == ref60["vwap"]
        assert math.isclose(f["realized_vol_60s"], ref60["rv"], rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=40, deadline=None)
@given(trades_st, st.integers(0, 150), bucket_st)
def test_state_round_trip_continues_identically(raw, cut, bucket_ns):
    trades = make_trades(raw)
    a, b = FlowState(bucket_ns), FlowState(bucket_ns)
    out_a = [a.add(t).fields for t in trades]
    out_b = [b.add(t).fields for t in trades[:cut]]
    b = FlowState.from_state(bucket_ns, orjson.loads(orjson.dumps(b.to_state())))
    out_b += [b.add(t).fields for t in trades[cut:]]
    assert out_a == out_b


def test_a_state_saved_with_another_bucket_width_restarts_empty():
    a = FlowState(BUCKET_NS)
    a.add({"trade_id": 1, "ts_event": T0, "ts_recv": T0, "price": "10", "qty": "1", "side": "buy"})
    b = FlowState.from_state(SECOND_NS, orjson.loads(orjson.dumps(a.to_state())))
    assert b.buckets == {} and b.features().fields["vwap_60s"] == 0.0


def test_bucket_width_must_divide_a_second():
    with pytest.raises(ValueError, match="divide one second"):
        FlowState(300 * MS)


def test_empty_window_after_a_pause_resets_to_zero():
    s = FlowState(BUCKET_NS)
    s.add({"trade_id": 1, "ts_event": T0, "ts_recv": T0, "price": "10", "qty": "1", "side": "buy"})
    f = s.add({"trade_id": 2, "ts_event": T0 + 2 * SECOND_NS, "ts_recv": T0, "price": "11", "qty": "3", "side": "sell"}).fields
    assert f["volume_imbalance_1s"] == -1.0 and f["count_imbalance_1s"] == -1.0
    assert f["volume_imbalance_10s"] == (1 - 3) / 4
    assert f["vwap_60s"] == (10 + 33) / 4


def test_saved_trade_state_stays_bounded_whatever_the_trade_rate():
    """100,000 trades in 60 s of event time (1,667/s) must not grow the changelog value past 100 kB.

    Keeping every trade of the last minute made this value ~5 MB, past Kafka's 1 MB message limit.
    """
    rng = random.Random(7)
    inst = TradeInstrument(lateness_ns=2 * SECOND_NS, flow_bucket_ns=BUCKET_NS)
    price, largest = 6_500_000, 0
    for i in range(100_000):
        price += rng.choice((-1, 0, 1))
        trade = {
            "venue": "binance", "symbol": "BTCUSDT", "trade_id": i, "ts_event": T0 + i * 600_000,
            "ts_recv": T0 + i * 600_000, "price": str(Decimal(price) / 100),
            "qty": str(Decimal(rng.randint(1, 10**8)) / 10**8), "side": rng.choice(("buy", "sell")),
        }
        inst.on_trade(trade)
        if i % 5_000 == 4_999:
            largest = max(largest, len(orjson.dumps(inst.to_state())))
    assert len(inst.flow.buckets) == 600
    assert inst.flow.windows[-1].buy_count + inst.flow.windows[-1].sell_count > 99_000
    assert largest < 100_000
