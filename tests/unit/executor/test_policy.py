"""Execution policy: passive never crosses, IOC never beyond the depth-based slippage bound, venue filters, lifecycle."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from executor.commands import OrderType, Side, TimeInForce
from executor.market import BookSnapshot, Quote
from executor.policy import (
    Cancel,
    Deny,
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


def test_liquidity_beyond_the_slippage_bound_is_not_counted_and_too_thin_is_denied_at_once() -> None:
    book = _book(asks=((D("100.10"), D("0.002")), (D("101.00"), D("50"))))

    action = decide(_intent(urgency=1.0), None, book, RULES, PARAMS, NOW)

    assert isinstance(action, Deny) and action.check == "thin_liquidity" and action.qty == D("0.001")
    assert "liquidity too thin" in action.reason and "min notional 1 (NOTIONAL)" in action.reason


def test_thin_liquidity_after_a_partial_fill_finishes_with_the_reason() -> None:
    book = _book(asks=((D("100.10"), D("0.002")),))

    action = decide(_intent(urgency=1.0, filled="0.5"), None, book, RULES, PARAMS, NOW)

    assert isinstance(action, Finish) and action.reason.startswith("remainder untradable: liquidity too thin")


ETH = InstrumentRules(D("0.01"), D("0.0001"), D("0.0001"), D("5"))  # the venue's ETHUSDT filters


def test_target_below_min_notional_is_denied_at_once_passive_or_crossing() -> None:
    book = _book("3000.00", "3000.01", bids=((D("3000.00"), D("50")),), asks=((D("3000.01"), D("50")),))

    passive = decide(_intent(target="0.001"), None, book, ETH, PARAMS, NOW)
    crossing = decide(_intent(urgency=1.0, target="0.001"), None, book, ETH, PARAMS, NOW)

    assert passive == Deny(
        "notional", "notional 3 (0.001 at 3000) below the min notional 5 (NOTIONAL)", D("3000.00"), D("0.001")
    )
    assert isinstance(crossing, Deny) and crossing.check == "notional" and crossing.price == D("3000.01")


def test_target_is_rounded_down_to_the_lot_step_never_up() -> None:
    book = _book("3000.00", "3000.01", bids=((D("3000.00"), D("50")),), asks=((D("3000.01"), D("50")),))

    action = decide(_intent(target="0.00279"), None, book, ETH, PARAMS, NOW)

    assert action == Place(OrderType.LIMIT_MAKER, None, D("3000.00"), D("0.0027"))


def test_target_below_the_min_qty_is_denied_without_a_book() -> None:
    action = decide(_intent(target="0.00009"), None, None, ETH, PARAMS, NOW)

    assert isinstance(action, Deny) and action.check == "lot_size" and action.price is None
    assert "below the min qty 0.0001 (LOT_SIZE)" in action.reason


def test_remainder_below_min_notional_after_a_fill_finishes() -> None:
    book = _book("3000.00", "3000.01", bids=((D("3000.00"), D("50")),), asks=((D("3000.01"), D("50")),))

    action = decide(_intent(target="0.01", filled="0.0099"), None, book, ETH, PARAMS, NOW)

    assert isinstance(action, Finish) and "min notional 5 (NOTIONAL)" in action.reason


def test_violation_names_each_filter() -> None:
    assert ETH.violation(D("3000.005"), D("0.01"))[0] == "price_filter"
    assert ETH.violation(D("0"), D("0.01"))[0] == "price_filter"
    assert ETH.violation(D("3000.00"), D("0.01005"))[0] == "lot_size"
    assert ETH.violation(D("3000.00"), D("0"))[0] == "lot_size"
    assert InstrumentRules(D("0.01"), D("0.0001"), D("0.001"), D("5")).violation(D("9000"), D("0.0009"))[0] == "lot_size"
    assert ETH.violation(D("3000.00"), D("0.0016"))[0] == "notional"
    assert ETH.violation(D("3000.00"), D("0.0017")) is None
    capped = InstrumentRules(D("0.01"), D("0.0001"), D("0.0001"), D("5"), max_qty=D("2"), max_notional=D("10000"),
                             min_price=D("1"), max_price=D("5000"))
    assert capped.violation(D("5000.01"), D("0.01")) == ("price_filter", "price 5000.01 outside [1, 5000] (PRICE_FILTER)")
    assert capped.violation(D("0.99"), D("10"))[0] == "price_filter"
    assert capped.violation(D("1"), D("2.0001")) == ("lot_size", "qty 2.0001 above the max qty 2 (LOT_SIZE)")
    assert capped.violation(D("5000"), D("2")) is None  # the maxima themselves pass
    assert InstrumentRules(D("0.01"), D("0.0001"), D("0.0001"), D("5"), max_notional=D("10000")).violation(
        D("5000"), D("2.0001")
    ) == ("notional", "notional 10000.5 (2.0001 at 5000) above the max notional 10000 (NOTIONAL)")


CAPPED = InstrumentRules(D("0.01"), D("0.0001"), D("0.0001"), D("5"), max_qty=D("0.5"), max_notional=D("1200"))


def test_an_order_above_the_max_qty_is_cut_to_it_and_the_rest_follows_in_the_next_order() -> None:
    book = _book("2000.00", "2000.01", bids=((D("2000.00"), D("50")),), asks=((D("2000.01"), D("50")),))

    first = decide(_intent(target="1.2"), None, book, CAPPED, PARAMS, NOW)
    second = decide(_intent(target="1.2", filled="0.5"), None, book, CAPPED, PARAMS, NOW)
    last = decide(_intent(target="1.2", filled="1.0"), None, book, CAPPED, PARAMS, NOW)

    assert [a.qty for a in (first, second, last)] == [D("0.5"), D("0.5"), D("0.2")]
    assert all(isinstance(a, Place) and CAPPED.violation(a.price, a.qty) is None for a in (first, second, last))


def test_an_ioc_buy_is_sized_so_that_even_at_its_slippage_bound_it_stays_under_the_max_notional() -> None:
    rules = InstrumentRules(D("0.01"), D("0.0001"), D("0.0001"), D("5"), max_notional=D("3000"))
    asks = ((D("3000.01"), D("0.5")), (D("3001.50"), D("5")), (D("3002.90"), D("5")))
    book = _book("3000.00", "3000.01", bids=((D("3000.00"), D("50")),), asks=asks)

    action = decide(_intent(urgency=1.0, target="3"), None, book, rules, PARAMS, NOW)

    bound = slippage_bound(Side.BUY, D("3000.01"), rules, PARAMS)
    assert isinstance(action, Place) and action.time_in_force is TimeInForce.IOC
    assert action.qty == rules.floor_qty(D("3000") / bound) and action.price <= bound
    assert action.price * action.qty <= D("3000")


def test_a_price_outside_the_allowed_range_is_denied_with_the_price_filter() -> None:
    rules = InstrumentRules(D("0.01"), D("0.0001"), D("0.0001"), D("5"), max_price=D("2500"))
    book = _book("3000.00", "3000.01", bids=((D("3000.00"), D("50")),), asks=((D("3000.01"), D("50")),))

    action = decide(_intent(target="0.01"), None, book, rules, PARAMS, NOW)

    assert isinstance(action, Deny) and action.check == "price_filter" and "outside [0, 2500]" in action.reason


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
        assert isinstance(action, Wait | Deny)


grids = st.sampled_from([
    ETH, RULES, CAPPED, InstrumentRules(D("0.01"), D("0.00001"), D("0.00001"), D("5")),
    InstrumentRules(D("0.00001"), D("0.0001"), D("0.001"), D("0.0001")),
    InstrumentRules(D("0.01"), D("0.001"), D("0.001"), D("1"), max_qty=D("3"), max_notional=D("50000"),
                    min_price=D("0.05"), max_price=D("90000")),
])


@settings(max_examples=400)
@given(
    grids, st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 10_000_000), st.integers(1, 20), levels, levels,
    st.integers(0, 50_000), st.decimals(D("0"), D("0.99"), places=2), st.floats(0, 1),
    st.decimals(D("0"), D("1"), places=8),
)
def test_an_order_either_passes_every_venue_filter_or_is_denied_with_a_reason(
    rules: InstrumentRules, side: Side, bid: int, spread: int, bid_steps, ask_steps, lots: int, part_lot: D,
    urgency: float, filled_share: D,
) -> None:
    target = (lots + part_lot) * rules.step_size
    assume(target > 0)
    bids = tuple((D(bid - t) * rules.tick_size, D(q) * rules.step_size) for t, q in sorted(set(bid_steps)) if bid > t)
    asks = tuple((D(bid + spread + t) * rules.tick_size, D(q) * rules.step_size) for t, q in sorted(set(ask_steps)))
    book = _book(bids=bids or ((rules.tick_size, rules.step_size),), asks=asks)
    params = PolicyParams(1, 3, 1, 0.5, 0, D("10"), D("0.5"))
    filled = rules.floor_qty(target * filled_share)
    intent = _intent(side, urgency, str(target), str(filled))

    action = decide(intent, None, book, rules, params, NOW)

    match action:
        case Place():
            assert rules.violation(action.price, action.qty) is None
            assert action.qty <= intent.target - intent.filled
        case Deny():
            assert filled == 0 and action.reason
            assert action.price is None or rules.violation(action.price, action.qty) is not None
        case Finish():
            assert filled > 0
        case _:
            assert isinstance(action, Wait)
