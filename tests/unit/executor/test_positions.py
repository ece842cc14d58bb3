"""Positions and PnL per instrument: exact Decimal, average cost, flips, dedup by trade id."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from executor.commands import Side
from executor.positions import Position, Positions
from executor.reconcile import balance_check

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


def test_a_buy_fee_in_the_base_asset_leaves_the_position_net_of_it() -> None:
    positions = Positions({"BTCUSDT": ("BTC", "USDT")})

    positions.apply_fill("BTCUSDT", 1, Side.BUY, D("100"), D("1"), D("0.001"), "BTC")

    pos = positions.get("BTCUSDT")
    assert pos.qty == D("0.999") and pos.avg_price == D("100")
    assert pos.realized_pnl == D("-0.1")  # the fee's 0.001 BTC at the average price
    assert dict(positions.asset_delta) == {"BTC": D("0.999"), "USDT": D("-100")}


# (side, price, qty, fee, fee in the base asset?)
fee_fills = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.decimals(min_value=D("0.01"), max_value=D("1000"), places=2),
        st.decimals(min_value=D("0.001"), max_value=D("10"), places=3),
        st.decimals(min_value=D("0"), max_value=D("0.001"), places=6),
        st.booleans(),
    ),
    max_size=40,
)


@given(fee_fills)
def test_the_position_always_equals_the_base_balance_change_whatever_the_fee_asset(
    trades: list[tuple[Side, D, D, D, bool]],
) -> None:
    positions = Positions({"BTCUSDT": ("BTC", "USDT")})
    base_balance = D(0)
    quote_balance = D(0)
    for trade_id, (side, price, qty, fee, in_base) in enumerate(trades):
        positions.apply_fill("BTCUSDT", trade_id, side, price, qty, fee, "BTC" if in_base else "USDT")
        base_balance += side.sign * qty - (fee if in_base else 0)
        quote_balance -= side.sign * qty * price + (0 if in_base else fee)

    assert positions.get("BTCUSDT").qty == base_balance
    assert positions.asset_delta["BTC"] == base_balance and positions.asset_delta["USDT"] == quote_balance


def test_balance_check_names_and_values_only_what_differs() -> None:
    baseline = {"BTC": D("1"), "USDT": D("1000"), "ETH": D("5")}
    delta = {"BTC": D("0.1"), "USDT": D("-600")}
    venue = {"BTC": D("1.2"), "USDT": D("200"), "ETH": D("5"), "BNB": D("0.5")}

    check = balance_check(baseline, delta, venue, {"BTC": D("6000"), "USDT": D("1")})

    assert check.diff == {"BTC": D("0.1"), "BNB": D("0.5"), "USDT": D("-200")}
    assert check.value == D("600") + D("200") and check.unpriced == ("BNB",)
    assert balance_check(baseline, delta, {"BTC": D("1.1"), "USDT": D("400"), "ETH": D("5")}, {}).diff == {}
