"""Risk engine: each rule denies with a reason, the kill switch, the token bucket from rateLimits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from executor.commands import OrderType, Side, SubmitOrder
from executor.risk import (
    Approved,
    Denied,
    RiskEngine,
    RiskLimits,
    Throttled,
    TokenBucket,
    TradingState,
    buckets_from_rate_limits,
)

D = Decimal


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _engine(clock: Clock | None = None, rate: float = 100.0, burst: float = 100.0) -> RiskEngine:
    limits = RiskLimits(D("1000"), D("5"), 3, D("50"), 0.5)
    return RiskEngine(limits, [TokenBucket(rate, burst, clock or Clock())])


def _order(side: Side = Side.BUY, price: str = "100", qty: str = "1") -> SubmitOrder:
    return SubmitOrder("tp-x-0-0", "s", "binance", "BTCUSDT", side, OrderType.LIMIT_MAKER, None, D(price), D(qty), 0, 0)


def test_an_order_within_every_limit_is_approved() -> None:
    assert _engine().check(_order(), D("100"), D(0), 0) == Approved()


@pytest.mark.parametrize(
    ("order", "mid", "position", "open_orders", "reason"),
    [
        (_order(price="100.6"), D("100"), D(0), 0, "outside band"),
        (_order(qty="11"), D("100"), D(0), 0, "notional"),
        (_order(), D("100"), D(0), 3, "open orders"),
        (_order(qty="2"), D("100"), D("4"), 0, "position would be 6"),
        (_order(), None, D(0), 0, "no market mid"),
    ],
)
def test_each_limit_denies_with_its_reason(
    order: SubmitOrder, mid: D | None, position: D, open_orders: int, reason: str
) -> None:
    verdict = _engine().check(order, mid, position, open_orders)

    assert isinstance(verdict, Denied) and reason in verdict.reason


def test_an_order_reducing_a_position_over_the_limit_is_allowed() -> None:
    assert _engine().check(_order(Side.SELL, qty="2"), D("100"), D("7"), 0) == Approved()


def test_kill_switch_denies_everything_until_released() -> None:
    risk = _engine()
    risk.set_state(TradingState.HALTED, "operator")

    halted = risk.check(_order(), D("100"), D(0), 0)
    risk.set_state(TradingState.ACTIVE, "released")

    assert isinstance(halted, Denied) and "halted: operator" in halted.reason
    assert risk.check(_order(), D("100"), D(0), 0) == Approved()


def test_reducing_state_allows_only_reducing_orders() -> None:
    risk = _engine()
    risk.set_state(TradingState.REDUCING, "drawdown")

    assert isinstance(risk.check(_order(Side.BUY), D("100"), D("1"), 0), Denied)
    assert risk.check(_order(Side.SELL), D("100"), D("1"), 0) == Approved()


def test_token_bucket_throttles_then_denies_beyond_the_max_wait() -> None:
    clock = Clock()
    risk = _engine(clock, rate=2.0, burst=1.0)

    first = risk.check(_order(), D("100"), D(0), 0)
    second = risk.check(_order(), D("100"), D(0), 0)
    clock.t += 0.5
    third = risk.check(_order(), D("100"), D(0), 0)

    assert first == Approved()
    assert isinstance(second, Throttled) and second.wait_s == pytest.approx(0.5)
    assert third == Approved()


def test_token_bucket_denies_when_the_wait_is_too_long() -> None:
    risk = _engine(rate=1.0, burst=1.0)
    risk.check(_order(), D("100"), D(0), 0)

    verdict = risk.check(_order(), D("100"), D(0), 0)

    assert isinstance(verdict, Denied) and "rate limit" in verdict.reason


def test_every_orders_limit_is_a_bucket_holding_its_window_allowance() -> None:
    limits = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    ]

    ten_s, day = buckets_from_rate_limits(limits, 0.8, Clock())

    assert (ten_s.rate, ten_s.burst) == (pytest.approx(8.0), 80.0)
    assert (day.rate, day.burst) == (pytest.approx(160000 / 86400), 160000.0)


def test_a_burst_is_bounded_by_the_short_window_and_refills_at_its_rate() -> None:
    clock = Clock()
    limits = RiskLimits(D("1000"), D("5"), 3, D("50"), 10.0)
    risk = RiskEngine(limits, buckets_from_rate_limits(
        [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 10}], 1.0, clock))

    verdicts = [risk.check(_order(), D("100"), D(0), 0) for _ in range(11)]

    assert verdicts[:10] == [Approved()] * 10
    assert isinstance(verdicts[10], Throttled) and verdicts[10].wait_s == pytest.approx(1.0)


def test_missing_orders_limit_is_an_error() -> None:
    with pytest.raises(ValueError, match="ORDERS"):
        buckets_from_rate_limits([], 1.0, Clock())
