"""ccxt exceptions map onto retriable / non-retriable / unknown-outcome venue errors."""

from __future__ import annotations

import ccxt
import pytest

from executor.venue import NotFound, OutcomeUnknown, RateLimited, Rejected, exchange_for, map_error

BODY = '{"code": %d, "msg": "%s"}'


@pytest.mark.parametrize(
    ("exc", "body", "kind", "code", "retriable"),
    [
        (ccxt.InvalidOrder("binance x"), BODY % (-2010, "Order would immediately match and take."), Rejected, -2010, False),
        (ccxt.InsufficientFunds("binance x"), BODY % (-2010, "Account has insufficient balance"), Rejected, -2010, False),
        (ccxt.BadRequest("binance x"), BODY % (-1013, "Filter failure: LOT_SIZE"), Rejected, -1013, False),
        (ccxt.OrderNotFound("binance x"), BODY % (-2013, "Order does not exist."), NotFound, -2013, False),
        (ccxt.RequestTimeout("binance x"), BODY % (-1007, "Timeout waiting for response"), OutcomeUnknown, -1007, True),
        (ccxt.ExchangeNotAvailable("binance 503"), "", OutcomeUnknown, None, True),
        (ccxt.NetworkError("connection reset"), None, OutcomeUnknown, None, True),
        (ccxt.RateLimitExceeded("binance 429"), BODY % (-1003, "Too much request weight used"), RateLimited, -1003, True),
    ],
)
def test_each_ccxt_error_maps_to_its_outcome(exc: Exception, body: str | None, kind: type, code: int | None,
                                             retriable: bool) -> None:
    mapped = map_error(exc, {"Retry-After": "7"}, body)

    assert type(mapped) is kind and mapped.code == code and mapped.retriable is retriable


def test_retry_after_header_sets_the_pause() -> None:
    mapped = map_error(ccxt.DDoSProtection("binance 418"), {"retry-after": "12"}, None)

    assert isinstance(mapped, RateLimited) and mapped.retry_after_s == 12.0


def test_only_a_post_only_cross_is_worth_a_fresh_price() -> None:
    cross = map_error(ccxt.InvalidOrder("x"), None, BODY % (-2010, "Order would immediately match and take."))
    broke = map_error(ccxt.InsufficientFunds("x"), None, BODY % (-2010, "Account has insufficient balance"))

    assert cross.post_only_would_take and not broke.post_only_would_take


def test_every_ccxt_endpoint_points_at_the_configured_url() -> None:
    exchange = exchange_for("http://127.0.0.1:9999", "k", "s", 1000)

    assert all(url.startswith("http://127.0.0.1:9999/") for url in exchange.urls["api"].values())
    assert exchange.urls["api"]["private"] == "http://127.0.0.1:9999/api/v3"
    assert exchange.options["fetchCurrencies"] is False and exchange.enableRateLimit is False
