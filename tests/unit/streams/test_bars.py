"""Bars: exact agreement with pandas resample, lateness corrections, final bars, state round trip."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.features.bars import INTERVALS_NS, BarBuilder, TooLate

S = 1_000_000_000
T0 = 1_700_000_000 * S


def trade(tid: int, ts: int, price: str, qty: str) -> dict:
    return {"trade_id": tid, "ts_event": ts, "ts_recv": ts + 1, "price": price, "qty": qty}


def pandas_bars(trades: list[dict], rule: str) -> dict[int, dict]:
    df = pd.DataFrame({
        "ts": pd.to_datetime([t["ts_event"] for t in trades], unit="ns"),
        "id": [t["trade_id"] for t in trades],
        "price": [Decimal(t["price"]) for t in trades],
        "qty": [Decimal(t["qty"]) for t in trades],
    }).sort_values(["ts", "id"], kind="stable")
    r = df.set_index("ts").resample(rule)
    out = pd.DataFrame({
        "open": r["price"].first(), "high": r["price"].max(), "low": r["price"].min(),
        "close": r["price"].last(), "volume": r["qty"].sum(), "count": r["price"].count(),
    })
    out = out[out["count"] > 0]
    return {int(ts.value): row for ts, row in out.iterrows()}


trade_lists = st.lists(
    st.tuples(
        st.integers(0, 150_000).map(lambda ms: ms * 1_000_000),  # within 150 s, ms resolution
        st.integers(1, 10_000).map(lambda c: str(Decimal(c) / 100)),
        st.integers(1, 100_000).map(lambda c: str(Decimal(c) / 10_000)),
    ),
    min_size=1, max_size=120,
)


@settings(max_examples=120, deadline=None)
@given(trade_lists, st.sampled_from(["1s", "1m"]))
def test_in_order_trades_give_exactly_the_pandas_resample_bars(raw, label):
    # Arrange: event-time ordered trades, ids ascending
    raw = sorted(raw, key=lambda x: x[0])
    trades = [trade(i + 1, T0 + ts, p, q) for i, (ts, p, q) in enumerate(raw)]
    builder = BarBuilder(INTERVALS_NS[label], allowed_lateness_ns=0)
    # Act
    bars = []
    for t in trades:
        released = builder.add(t)
        assert not isinstance(released, TooLate)
        bars.extend(released)
    bars.extend(builder.flush())
    # Assert
    expected = pandas_bars(trades, "1s" if label == "1s" else "1min")
    got = {b["start"]: b for b in bars}
    assert len(got) == len(bars), "each bar emitted once when nothing is late"
    assert sorted(got) == sorted(expected)
    for start, row in expected.items():
        b = got[start]
        assert b["end"] - b["start"] == INTERVALS_NS[label]
        assert Decimal(b["open"]) == row["open"] and Decimal(b["high"]) == row["high"]
        assert Decimal(b["low"]) == row["low"] and Decimal(b["close"]) == row["close"]
        assert Decimal(b["volume"]) == row["volume"] and b["trade_count"] == row["count"]
        assert b["version"] == 0


@settings(max_examples=80, deadline=None)
@given(trade_lists, st.randoms(use_true_random=False))
def test_shuffled_trades_within_lateness_end_with_the_pandas_bars(raw, rnd):
    # Arrange: arrival order shuffled, lateness wide enough to accept everything
    trades = [trade(i + 1, T0 + ts, p, q) for i, (ts, p, q) in enumerate(raw)]
    arrival = trades[:]
    rnd.shuffle(arrival)
    builder = BarBuilder(S, allowed_lateness_ns=1000 * S)
    # Act: the last version of each bar wins
    final: dict[int, dict] = {}
    for t in arrival:
        released = builder.add(t)
        assert not isinstance(released, TooLate)
        for b in released:
            assert b["version"] == final.get(b["start"], {"version": -1})["version"] + 1
            final[b["start"]] = b
    for b in builder.flush():
        final[b["start"]] = b
    # Assert
    expected = pandas_bars(trades, "1s")
    assert sorted(final) == sorted(expected)
    for start, row in expected.items():
        b = final[start]
        assert (Decimal(b["open"]), Decimal(b["close"])) == (row["open"], row["close"])
        assert (Decimal(b["high"]), Decimal(b["low"])) == (row["high"], row["low"])
        assert Decimal(b["volume"]) == row["volume"] and b["trade_count"] == row["count"]


def test_late_trade_within_lateness_reemits_bar_with_next_version():
    # Arrange
    b = BarBuilder(S, allowed_lateness_ns=2 * S)
    b.add(trade(1, T0 + 100, "10", "1"))
    first = b.add(trade(2, T0 + S + 5, "11", "1"))  # closes bar [T0, T0+1s)
    # Act
    late = b.add(trade(3, T0 + 50, "9", "2"))  # belongs to the closed bar, 1 s late
    # Assert
    assert [x["version"] for x in first] == [0] and first[0]["trade_count"] == 1
    assert len(late) == 1
    corrected = late[0]
    assert corrected["start"] == T0 and corrected["version"] == 1
    assert corrected["open"] == "9" and corrected["close"] == "10" and corrected["low"] == "9"
    assert corrected["volume"] == "3" and corrected["quote_volume"] == "28"
    assert corrected["trade_count"] == 2 and corrected["first_trade_id"] == 1 and corrected["last_trade_id"] == 3


def test_trade_past_lateness_is_too_late_and_bar_is_unchanged():
    b = BarBuilder(S, allowed_lateness_ns=2 * S)
    b.add(trade(1, T0 + 100, "10", "1"))
    b.add(trade(2, T0 + 3 * S, "11", "1"))  # watermark reaches end + lateness of the first bar
    assert isinstance(b.add(trade(3, T0 + 200, "9", "1")), TooLate)
    assert T0 not in b.bars


def test_vwap_and_quote_volume_are_exact_decimals():
    b = BarBuilder(S, 0)
    b.add(trade(1, T0, "0.1", "0.3"))
    b.add(trade(2, T0 + 1, "0.2", "0.7"))
    (bar,) = b.add(trade(3, T0 + S, "1", "1"))
    assert bar["quote_volume"] == "0.17" and bar["volume"] == "1.0" and Decimal(bar["vwap"]) == Decimal("0.17")


@settings(max_examples=60, deadline=None)
@given(trade_lists, st.integers(0, 119))
def test_restoring_state_mid_stream_gives_the_same_bars(raw, cut):
    # Arrange
    trades = [trade(i + 1, T0 + ts, p, q) for i, (ts, p, q) in enumerate(raw)]
    cut = min(cut, len(trades))
    whole, split = BarBuilder(S, S), BarBuilder(S, S)

    def feed(builder: BarBuilder, batch: list[dict]) -> list[dict]:
        out = []
        for t in batch:
            released = builder.add(t)
            out.extend([] if isinstance(released, TooLate) else released)
        return out

    # Act
    a = feed(whole, trades)
    b = feed(split, trades[:cut])
    b += feed(BarBuilder.from_state(S, S, split.to_state()), trades[cut:])
    # Assert
    assert a == b
