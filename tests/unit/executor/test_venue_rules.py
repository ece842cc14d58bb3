"""Instrument rules read from an exchangeInfo payload: every limit the venue states, "0" meaning none."""

from __future__ import annotations

from decimal import Decimal

from executor.policy import UNLIMITED
from executor.venue import BinanceVenue
from sim_exchange.filters import symbol_filters
from sim_exchange.symbols import make_spec

D = Decimal


def test_rules_carry_the_simulated_exchanges_minima_and_maxima() -> None:
    info = {"symbols": [{"symbol": "ETHUSDT", "filters": symbol_filters(make_spec("ETHUSDT"))}]}

    rules = BinanceVenue.rules_of(info)["ETHUSDT"]

    assert (rules.tick_size, rules.step_size, rules.min_qty, rules.min_notional) == (
        D("0.01"), D("0.0001"), D("0.0001"), D("5")
    )
    assert (rules.max_qty, rules.max_notional, rules.min_price, rules.max_price) == (
        D("9000"), D("9000000"), D("0.01"), D("1000000")
    )


def test_zero_or_missing_maxima_mean_no_limit_and_the_legacy_min_notional_filter_is_read() -> None:
    filters = [
        {"filterType": "PRICE_FILTER", "minPrice": "0.00000000", "maxPrice": "0.00000000", "tickSize": "0.01"},
        {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "0", "stepSize": "0.001"},
        {"filterType": "MIN_NOTIONAL", "minNotional": "10.0"},
    ]

    rules = BinanceVenue.rules_of({"symbols": [{"symbol": "XUSDT", "filters": filters}]})["XUSDT"]

    assert (rules.max_qty, rules.max_notional, rules.max_price, rules.min_price) == (UNLIMITED, UNLIMITED, UNLIMITED, 0)
    assert rules.min_notional == D("10.0")
    assert rules.violation(D("123456789.01"), D("1000000.001")) is None
