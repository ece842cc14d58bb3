"""Rolling-window flow features against a brute-force recomputation."""

from __future__ import annotations

import math
from decimal import Decimal

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.features.flow import SECOND_NS, FlowState

T0 = 1_700_000_000 * SECOND_NS


def brute(trades: list[dict], width_s: int) -> dict[str, float]:
    newest = max(t["ts_event"] for t in trades)
    inside = [t for t in trades if t["ts_event"] > newest - width_s * SECOND_NS]
    buy = sum((Decimal(t["qty"]) for t in inside if t["side"] == "buy"), Decimal(0))
    sell = sum((Decimal(t["qty"]) for t in inside if t["side"] == "sell"), Decimal(0))
    nb = sum(1 for t in inside if t["side"] == "buy")
    ns = len(inside) - nb
    quote = sum((Decimal(t["price"]) * Decimal(t["qty"]) for t in inside), Decimal(0))
    return {
        "vi": float((buy - sell) / (buy + sell)) if buy + sell else 0.0,
        "ci": (nb - ns) / len(inside) if inside else 0.0,
        "signed": float(buy - sell),
        "vwap": float(quote / (buy + sell)) if buy + sell else 0.0,
    }


trades_st = st.lists(
    st.tuples(
        st.integers(0, 3000),  # gap to previous trade, ms
        st.integers(1, 5000).map(lambda c: str(Decimal(c) / 100)),
        st.integers(1, 1000).map(lambda c: str(Decimal(c) / 1000)),
        st.sampled_from(["buy", "sell"]),
    ),
    min_size=1, max_size=150,
)


@settings(max_examples=100, deadline=None)
@given(trades_st)
def test_windows_match_brute_force_over_the_last_1_10_60_seconds(raw):
    # Arrange
    state, seen, ts = FlowState(), [], T0
    for i, (gap_ms, price, qty, side) in enumerate(raw):
        ts += gap_ms * 1_000_000
        t = {"trade_id": i, "ts_event": ts, "ts_recv": ts, "price": price, "qty": qty, "side": side}
        seen.append(t)
        # Act
        f = state.add(t).fields
        # Assert
        for w in (1, 10, 60):
            ref = brute(seen, w)
            assert f[f"volume_imbalance_{w}s"] == ref["vi"]
            assert abs(f[f"count_imbalance_{w}s"] - ref["ci"]) < 1e-12
        ref60 = brute(seen, 60)
        assert f["signed_volume_60s"] == ref60["signed"]
        assert f["vwap_60s"] == ref60["vwap"]
        inside = [k for k, x in enumerate(seen) if x["ts_event"] > ts - 60 * SECOND_NS]
        r2 = sum(
            math.log(float(seen[k]["price"]) / float(seen[k - 1]["price"])) ** 2 for k in inside if k > 0
        )
        assert math.isclose(f["realized_vol_60s"], math.sqrt(r2), rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=40, deadline=None)
@given(trades_st, st.integers(0, 150))
def test_state_round_trip_continues_identically(raw, cut):
    trades, ts = [], T0
    for i, (gap_ms, price, qty, side) in enumerate(raw):
        ts += gap_ms * 1_000_000
        trades.append({"trade_id": i, "ts_event": ts, "ts_recv": ts, "price": price, "qty": qty, "side": side})
    a, b = FlowState(), FlowState()
    out_a = [a.add(t).fields for t in trades]
    out_b = [b.add(t).fields for t in trades[:cut]]
    b = FlowState.from_state(orjson.loads(orjson.dumps(b.to_state())))
    out_b += [b.add(t).fields for t in trades[cut:]]
    assert out_a == out_b


def test_empty_window_after_a_pause_resets_to_zero():
    s = FlowState()
    s.add({"trade_id": 1, "ts_event": T0, "ts_recv": T0, "price": "10", "qty": "1", "side": "buy"})
    f = s.add({"trade_id": 2, "ts_event": T0 + 2 * SECOND_NS, "ts_recv": T0, "price": "11", "qty": "3", "side": "sell"}).fields
    assert f["volume_imbalance_1s"] == -1.0 and f["count_imbalance_1s"] == -1.0
    assert f["volume_imbalance_10s"] == (1 - 3) / 4
    assert f["vwap_60s"] == (10 + 33) / 4
