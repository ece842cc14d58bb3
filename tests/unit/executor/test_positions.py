"""Positions and PnL per instrument: exact Decimal, average cost, flips, dedup by trade id."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from executor.commands import Side
from executor.positions import Position, Positions

D = Decimal


def test_round_trip_realizes_the_price_difference() -> None:
    pos = Position("BTCUSDT")
    pos.apply_fill(Side.BUY, D("100.1"), D("0.3"))
    pos.apply_fill(Side.BUY, D("100.4"), D("0.1"))

    pos.apply_fill(Side.SELL, D("101"), D("0.4"))

    assert pos.qty == 0
    assert pos.realized_pnl == D("0.3") * D("0.9") + D("0.1") * D("0.6")


def test_flip_through_zero_opens_the_remainder_at_the_fill_price() -> None:
    pos = Position("BTCUSDT")
    pos.apply_fill(Side.BUY, D("10"), D("1"))

    pos.apply_fill(Side.SELL, D("12"), D("3"))

    assert (pos.qty, pos.avg_price, pos.realized_pnl) == (D("-2"), D("12"), D("2"))
    assert pos.unrealized_pnl(D("11")) == D("2")


def test_fees_are_kept_per_asset() -> None:
    pos = Position("BTCUSDT")
    pos.apply_fill(Side.BUY, D("10"), D("1"), D("0.001"), "BTC")
    pos.apply_fill(Side.SELL, D("10"), D("1"), D("0.01"), "USDT")

    assert dict(pos.fees) == {"BTC": D("0.001"), "USDT": D("0.01")}


def test_a_trade_id_is_applied_once() -> None:
    positions = Positions()

    first = positions.apply_fill("BTCUSDT", 7, Side.BUY, D("1"), D("2"), D(0), "")
    again = positions.apply_fill("BTCUSDT", 7, Side.BUY, D("1"), D("2"), D(0), "")

    assert (first, again) == (True, False)
    assert positions.get("BTCUSDT").qty == D("2")


fills = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.decimals(min_value=D("0.01"), max_value=D("1000"), places=2),
        st.decimals(min_value=D("0.001"), max_value=D("10"), places=3),
    ),
    max_size=40,
)


@given(fills, st.decimals(min_value=D("0.01"), max_value=D("1000"), places=2))
def test_total_pnl_equals_cash_flow_plus_marked_inventory(trades: list[tuple[Side, D, D]], mark: D) -> None:
    pos = Position("X")
    cash = D(0)
    for side, price, qty in trades:
        pos.apply_fill(side, price, qty)
        cash -= side.sign * price * qty

    assert pos.qty == sum((side.sign * qty for side, _, qty in trades), D(0))
    assert abs(pos.realized_pnl + pos.unrealized_pnl(mark) - (cash + pos.qty * mark)) < D("1e-12")
