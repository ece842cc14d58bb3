"""Execution policy: passive never crosses, IOC never beyond the depth-based slippage bound, lifecycle."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from executor.commands import OrderType, Side, TimeInForce
from executor.market import BookSnapshot, Quote
from executor.policy import (
    Cancel,
    Finish,
    InstrumentRules,
    Intent,
    Place,
    PolicyParams,
    Wait,
    Working,
    decide,
    slippage_bound,
)

D = Decimal
RULES = InstrumentRules(D("0.01"), D("0.001"), D("0.001"), D("1"))
PARAMS = PolicyParams(
    passive_ttl_ns=2_000_000_000, reprice_ticks=3, improve_ticks=1, cross_min_urgency=0.5,
    passive_window_ns=10_000_000_000, max_slippage_bps=D("10"), depth_fraction=D("0.5"),
)
NOW = 1_000_000_000_000


def _book(bid: str = "100.00", ask: str = "100.10", bids=None, asks=None) -> BookSnapshot:
    bids = bids or ((D(bid), D("5")),)
    asks = asks or ((D(ask), D("5")),)
    return BookSnapshot(Quote(bids[0][0], bids[0][1], asks[0][0], asks[0][1], 1, 0), tuple(bids), tuple(asks))


def _intent(side: Side = Side.BUY, urgency: float = 0.0, target: str = "1", filled: str = "0") -> Intent:
    return Intent(side, D(target), D(filled), urgency, NOW + 60_000_000_000, NOW)


def test_passive_buy_improves_one_tick_inside_the_spread() -> None:
    action = decide(_intent(), None, _book(), RULES, PARAMS, NOW)

    assert action == Place(OrderType.LIMIT_MAKER, None, D("100.01"), D("1"))


def test_passive_sell_on_a_one_tick_spread_joins_the_best_ask() -> None:
    action = decide(_intent(Side.SELL), None, _book("100.00", "100.01"), RULES, PARAMS, NOW)

    assert action == Place(OrderType.LIMIT_MAKER, None, D("100.01"), D("1"))


def test_urgency_one_crosses_at_once_with_an_ioc() -> None:
    action = decide(_intent(urgency=1.0), None, _book(), RULES, PARAMS, NOW)

    assert isinstance(action, Place) and action.time_in_force is TimeInForce.IOC and action.price == D("100.10")


def test_low_urgency_never_crosses_even_after_the_window() -> None:
    action = decide(_intent(urgency=0.4), None, _book(), RULES, PARAMS, NOW + 50_000_000_000)

    assert isinstance(action, Place) and action.order_type is OrderType.LIMIT_MAKER


def test_mid_urgency_crosses_after_its_share_of_the_passive_window() -> None:
    intent = _intent(urgency=0.6)

    before = decide(intent, None, _book(), RULES, PARAMS, NOW + 3_000_000_000)
    after = decide(intent, None, _book(), RULES, PARAMS, NOW + 4_000_000_000)

    assert isinstance(before, Place) and before.order_type is OrderType.LIMIT_MAKER
    assert isinstance(after, Place) and after.time_in_force is TimeInForce.IOC


def test_thin_liquidity_shrinks_the_order() -> None:
    book = _book(asks=((D("100.10"), D("0.4")),), bids=((D("100.00"), D("0.2")),))

    action = decide(_intent(urgency=1.0, target="3"), None, book, RULES, PARAMS, NOW)

    assert isinstance(action, Place) and action.qty == D("0.2")


def test_liquidity_beyond_the_slippage_bound_is_not_counted() -> None:
    book = _book(asks=((D("100.10"), D("0.002")), (D("101.00"), D("50"))))

    action = decide(_intent(urgency=1.0), None, book, RULES, PARAMS, NOW)

    assert action == Wait("liquidity too thin to cross")


def test_resting_order_is_repriced_after_ttl_and_when_the_market_moves_away() -> None:
    working = Working(OrderType.LIMIT_MAKER, None, D("100.01"), NOW)

    fresh = decide(_intent(), working, _book(), RULES, PARAMS, NOW + 1)
    stale = decide(_intent(), working, _book(), RULES, PARAMS, NOW + PARAMS.passive_ttl_ns)
    moved = decide(_intent(), working, _book("100.04", "100.10"), RULES, PARAMS, NOW + 1)

    assert fresh == Wait("resting")
    assert stale == Cancel("passive ttl reached")
    assert moved == Cancel("market moved away")


def test_expiry_cancels_the_working_order_then_finishes() -> None:
    intent = _intent()
    working = Working(OrderType.LIMIT_MAKER, None, D("100.01"), NOW)

    assert decide(intent, working, _book(), RULES, PARAMS, intent.expires_at) == Cancel("signal expired")
    assert decide(intent, None, _book(), RULES, PARAMS, intent.expires_at) == Finish("signal expired")


def test_filled_intent_finishes() -> None:
    assert decide(_intent(filled="1"), None, _book(), RULES, PARAMS, NOW) == Finish("target reached")


def test_ioc_in_flight_waits() -> None:
    working = Working(OrderType.LIMIT, TimeInForce.IOC, D("100.1"), NOW)

    assert decide(_intent(urgency=1.0), working, _book(), RULES, PARAMS, NOW) == Wait("IOC settling")


prices = st.integers(1000, 100_000)
levels = st.lists(st.tuples(st.integers(0, 50), st.integers(1, 5000)), min_size=1, max_size=10)


def _ladder(best: int, steps: list[tuple[int, int]], direction: int) -> tuple[tuple[D, D], ...]:
    ticks = sorted({s for s, _ in steps})
    qty = dict(steps)
    return tuple((D(best + direction * t) * RULES.tick_size, D(qty[t]) * RULES.step_size) for t in ticks)


@settings(max_examples=300)
@given(
    st.sampled_from([Side.BUY, Side.SELL]), prices, st.integers(1, 20), levels, levels,
    st.integers(1, 20_000), st.floats(0, 1), st.integers(0, 5),
)
def test_ioc_never_beyond_the_bound_and_passive_never_crosses(
    side: Side, bid: int, spread: int, bid_steps, ask_steps, target: int, urgency: float, improve: int
) -> None:
    book = _book(bids=_ladder(bid, bid_steps, -1), asks=_ladder(bid + spread, ask_steps, 1))
    params = PolicyParams(1, 3, improve, 0.5, 0, D("10"), D("0.5"))
    intent = _intent(side, urgency, str(D(target) * RULES.step_size))

    action = decide(intent, None, book, RULES, params, NOW)

    if isinstance(action, Place):
        assert action.qty <= intent.target and action.qty % RULES.step_size == 0
        assert action.price % RULES.tick_size == 0
        if action.time_in_force is TimeInForce.IOC:
            bound = slippage_bound(side, book.opposite(side)[0][0], RULES, params)
            inside = sum(q for p, q in book.opposite(side) if (p <= bound if side is Side.BUY else p >= bound))
            assert (action.price <= bound) if side is Side.BUY else (action.price >= bound)
            assert action.qty <= inside * params.depth_fraction
        else:
            assert (action.price < book.quote.ask) if side is Side.BUY else (action.price > book.quote.bid)
            assert (action.price >= book.quote.bid) if side is Side.BUY else (action.price <= book.quote.ask)
    else:
        assert isinstance(action, Wait)
