"""Periodic reconciliation decisions: valuation, which open orders differ, when to publish, when it is a breach."""

from __future__ import annotations

from decimal import Decimal

import pytest

from executor.commands import OrderType, Side, SubmitOrder, TimeInForce
from executor.ids import client_order_id
from executor.market import Quote
from executor.order import Order, OrderStatus
from executor.reconcile import BalanceCheck
from executor.risk import TradingState
from executor.supervise import (
    assess,
    is_settling,
    order_view,
    split_open_orders,
    state_rank,
    valuation_prices,
)
from executor.trader import SignalRun

D = Decimal
OURS = client_order_id("sig", 0, 0)
OURS_UNMANAGED = client_order_id("sig", 0, 1)


def _order(status: OrderStatus) -> Order:
    cmd = SubmitOrder(OURS, "sig", "binance", "BTCUSDT", Side.BUY, OrderType.LIMIT, TimeInForce.GTC,
                      D(100), D(1), 0, 0)
    return Order(cmd, status=status)


def _run(finishing: bool, done: bool) -> SignalRun:
    return SignalRun({"signal_id": "sig"}, 0, 0, 0, Side.BUY, D(1), finishing=finishing, done=done)


def test_quote_assets_are_worth_one_and_a_base_asset_its_mid_when_quoted() -> None:
    assets = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT")}
    quotes = {"BTCUSDT": Quote(D(100), D(1), D(102), D(1), 1, 0)}

    assert valuation_prices(assets, quotes.get) == {"USDT": D(1), "BTC": D(101)}


def test_open_orders_split_into_foreign_and_ours_not_managed() -> None:
    foreign = {"symbol": "BTCUSDT", "clientOrderId": "web_123"}
    managed = {"symbol": "BTCUSDT", "clientOrderId": OURS}
    unmanaged = {"symbol": "ETHUSDT", "clientOrderId": OURS_UNMANAGED}

    split = split_open_orders([foreign, managed, unmanaged], {OURS})

    assert split == ([foreign], [unmanaged])
    assert order_view(*split) == sorted([("BTCUSDT", "web_123", False), ("ETHUSDT", OURS_UNMANAGED, True)])


def test_a_fill_may_be_on_its_way_while_an_order_is_unsettled_or_a_run_finishes() -> None:
    assert not is_settling([_order(OrderStatus.NEW)], [_run(finishing=True, done=True)])
    assert is_settling([_order(OrderStatus.UNKNOWN)], [])
    assert is_settling([], [_run(finishing=True, done=False)])


DIFF = {"BTC": D("0.5")}
CHECK = BalanceCheck(DIFF, D(50))
VIEW = (DIFF, [])


@pytest.mark.parametrize(("last_diff", "last_view", "published", "settling", "max_diff", "expected"), [
    (None, None, ({}, []), False, D(10), (False, False)),  # seen once: not yet
    (DIFF, VIEW, ({}, []), False, D(10), (True, True)),  # seen twice, worth over the max: breach
    (DIFF, VIEW, ({}, []), False, D(100), (True, False)),  # steady but small: published, no breach
    (DIFF, VIEW, VIEW, False, D(100), (False, False)),  # already published
    (DIFF, VIEW, VIEW, False, D(10), (False, True)),  # a breach again, the view already published
    (DIFF, VIEW, ({}, []), True, D(10), (False, False)),  # a fill may be on its way: wait
])
def test_a_view_is_published_once_steady_and_a_persistent_large_difference_is_a_breach(
    last_diff: dict | None, last_view: tuple | None, published: tuple, settling: bool, max_diff: Decimal,
    expected: tuple[bool, bool],
) -> None:
    verdict = assess(CHECK, VIEW, settling, last_diff, last_view, published, max_diff)

    assert (verdict.publish, verdict.breach) == expected


def test_no_difference_is_never_a_breach_and_a_steady_clean_view_after_a_published_one_is_published() -> None:
    clean = BalanceCheck({}, D(0))

    verdict = assess(clean, ({}, []), False, {}, ({}, []), VIEW, D(0))

    assert (verdict.publish, verdict.breach) == (True, False)


def test_trading_states_rank_from_active_to_halted() -> None:
    assert [state_rank(s) for s in (TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED)] == [0, 1, 2]
