"""The venue client: ccxt's ``binance`` class pointed at the configured REST URL, raw Binance payloads.

Every ``urls['api']`` entry is rewritten onto ``rest_url`` so no call can leave for the real venue;
currencies (a ``sapi`` call) are not fetched; ccxt's own rate limiter is off because the risk engine's
token bucket paces orders.  Calls use ccxt's implicit Binance endpoints, so prices and quantities stay
exact decimal strings both ways.  ccxt's exceptions map onto three outcomes that callers branch on:

* :class:`Rejected` (``retriable = False``): the venue refused; carries its code and message;
* :class:`RateLimited` (``retriable = True``): 429/418; wait ``retry_after_s`` before the next call;
* :class:`OutcomeUnknown` (``retriable = True``): 5xx, timeout, dropped connection: the request may or
  may not have executed, so an order in flight becomes ``unknown`` until a query by client order id
  settles it (never a blind resend);
* :class:`NotFound`: a query or cancel for an order the venue does not have.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import ccxt
import orjson

from executor.commands import SubmitOrder
from executor.policy import UNLIMITED, InstrumentRules
from schemas.decimals import decimal_text


class VenueError(Exception):
    """A venue call that failed; ``retriable`` says whether trying again can help."""

    retriable = False

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Rejected(VenueError):
    """The venue refused the request (bad parameters, filters, balance, post-only would take)."""

    retriable = False

    @property
    def post_only_would_take(self) -> bool:
        """True for a LIMIT_MAKER refused because the market moved into it: a fresh price may pass."""
        return self.code == -2010 and "immediately match" in self.message


class NotFound(VenueError):
    """The venue has no such order."""

    retriable = False


class RateLimited(VenueError):
    """429/418: slow down for ``retry_after_s``; the request was not executed."""

    retriable = True

    def __init__(self, message: str, code: int | None, retry_after_s: float) -> None:
        super().__init__(message, code)
        self.retry_after_s = retry_after_s


class OutcomeUnknown(VenueError):
    """5xx, timeout or dropped connection: the request may have executed."""

    retriable = True


_BODY = re.compile(r"\{.*\}", re.DOTALL)


def _code_and_message(exc: Exception, body: str | None) -> tuple[int | None, str]:
    match = _BODY.search(body or "") or _BODY.search(str(exc))
    if match:
        try:
            body = orjson.loads(match[0])
            return int(body.get("code")), str(body.get("msg"))
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
            pass
    return None, str(exc)


def map_error(exc: Exception, headers: dict[str, str] | None, body: str | None = None) -> VenueError:
    """Return the tickpipe outcome of a ccxt exception (``headers``, ``body``: of the failed response)."""
    code, message = _code_and_message(exc, body)
    if isinstance(exc, (ccxt.DDoSProtection, ccxt.RateLimitExceeded)):  # 418 / 429 (-1003, -1015)
        retry_after = 1.0
        for key, value in (headers or {}).items():
            if key.lower() == "retry-after":
                try:
                    retry_after = max(0.0, float(value))
                except ValueError:
                    pass
        return RateLimited(message, code, retry_after)
    if isinstance(exc, ccxt.OrderNotFound):
        return NotFound(message, code)
    if isinstance(exc, ccxt.OperationFailed):  # network errors, 5xx, timeouts, -1000, -1007
        return OutcomeUnknown(message, code)
    return Rejected(message, code)


def answer_error(status: int, code: int | None, message: str, cancel: bool = False) -> VenueError:
    """The outcome of a refused WebSocket API request, as :func:`map_error` gives it for the same REST answer."""
    if status in (418, 429):
        return RateLimited(message, code, 1.0)
    if status >= 500 or code in (-1000, -1007):
        return OutcomeUnknown(message, code)
    if code == -2013 or (cancel and code == -2011):
        return NotFound(message, code)
    return Rejected(message, code)


def order_params(cmd: SubmitOrder, timestamp_ms: int | None, recv_window_ms: int | None) -> dict[str, Any]:
    """A new order's Binance parameters (``newOrderRespType=FULL``), the same on REST and the WebSocket API."""
    params: dict[str, Any] = {
        "symbol": cmd.symbol,
        "side": cmd.side.value.upper(),
        "type": cmd.order_type.value,
        "quantity": decimal_text(cmd.qty),
        "price": decimal_text(cmd.price),
        "newClientOrderId": cmd.client_order_id,
        "newOrderRespType": "FULL",
    }
    if cmd.time_in_force is not None:
        params["timeInForce"] = cmd.time_in_force.value
    if timestamp_ms is not None:
        params["timestamp"] = timestamp_ms
    if recv_window_ms is not None:
        params["recvWindow"] = recv_window_ms
    return params


def exchange_for(rest_url: str, api_key: str, api_secret: str, timeout_ms: int) -> ccxt.binance:
    """Return a ccxt ``binance`` whose every endpoint lives under ``rest_url``."""
    exchange = ccxt.binance(
        {
            "apiKey": api_key,
            "secret": api_secret,
            "timeout": timeout_ms,
            "enableRateLimit": False,
            "options": {"defaultType": "spot", "fetchCurrencies": False, "adjustForTimeDifference": False},
        }
    )
    base = rest_url.rstrip("/")
    exchange.urls["api"] = {key: base + urlsplit(url).path for key, url in exchange.urls["api"].items()}
    return exchange


def _limit(text: str | None) -> Decimal:
    """A filter maximum; Binance writes "0" (or leaves it out) for no limit."""
    value = Decimal(text or "0")
    return value if value > 0 else UNLIMITED


def _rules(symbol_info: dict[str, Any]) -> InstrumentRules:
    filters = {f["filterType"]: f for f in symbol_info.get("filters", [])}
    price, lot = filters["PRICE_FILTER"], filters["LOT_SIZE"]
    notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
    return InstrumentRules(
        tick_size=Decimal(price["tickSize"]),
        step_size=Decimal(lot["stepSize"]),
        min_qty=Decimal(lot["minQty"]),
        min_notional=Decimal(notional.get("minNotional", "0")),
        max_qty=_limit(lot.get("maxQty")),
        max_notional=_limit(notional.get("maxNotional")),
        min_price=Decimal(price.get("minPrice") or "0"),
        max_price=_limit(price.get("maxPrice")),
    )


@dataclass(frozen=True)
class VenueClock:
    """The venue's clock relative to ours: ``venue_ms ~ local_ms + offset_ms``, within ``uncertainty_ms``."""

    offset_ms: float = 0.0
    uncertainty_ms: float = 0.0

    def venue_ms(self, local_ns: int) -> int:
        """Our best estimate of the venue's clock (ms) at local time ``local_ns``."""
        return int(local_ns / 1e6 + self.offset_ms)

    def surely_past(self, venue_ms: int, local_ns: int) -> bool:
        """True once ``venue_ms`` has certainly passed on the venue's clock at local time ``local_ns``."""
        return local_ns / 1e6 + self.offset_ms - self.uncertainty_ms > venue_ms

    def local_ns_when_past(self, venue_ms: int) -> int:
        """The local time (ns) from which :meth:`surely_past` holds for ``venue_ms``."""
        return int((venue_ms - self.offset_ms + self.uncertainty_ms + 1) * 1e6)


class BinanceVenue:
    """Synchronous Binance spot REST client returning raw venue payloads."""

    def __init__(self, rest_url: str, api_key: str, api_secret: str, timeout_ms: int) -> None:
        self.exchange = exchange_for(rest_url, api_key, api_secret, timeout_ms)
        self.rest_url = rest_url

    def _call(self, method: str, params: dict[str, Any]) -> Any:
        self.exchange.last_http_response = None
        self.exchange.last_response_headers = None
        try:
            return getattr(self.exchange, method)(params)
        except ccxt.BaseError as exc:
            raise map_error(exc, self.exchange.last_response_headers, self.exchange.last_http_response) from exc

    def exchange_info(self) -> dict[str, Any]:
        """``GET /api/v3/exchangeInfo``: symbols, filters and ``rateLimits``."""
        return self._call("publicGetExchangeInfo", {})

    @staticmethod
    def assets_of(info: dict[str, Any]) -> dict[str, tuple[str, str]]:
        """``symbol -> (base asset, quote asset)`` from an exchangeInfo payload."""
        return {s["symbol"]: (s["baseAsset"], s["quoteAsset"]) for s in info["symbols"]}

    @staticmethod
    def rules_of(info: dict[str, Any]) -> dict[str, InstrumentRules]:
        """Trading rules per symbol from an exchangeInfo payload."""
        return {s["symbol"]: _rules(s) for s in info["symbols"]}

    def server_time(self) -> VenueClock:
        """Measure the venue's clock against ours with ``GET /api/v3/time`` (offset and its uncertainty)."""
        before = time.time_ns()
        answer = self._call("publicGetTime", {})
        after = time.time_ns()
        local_mid_ms = (before + after) / 2 / 1e6
        # the venue's answer is a whole millisecond taken somewhere inside the round trip
        return VenueClock(int(answer["serverTime"]) - local_mid_ms, (after - before) / 2 / 1e6 + 1)

    def depth(self, symbol: str, limit: int = 100) -> dict[str, Any]:
        """``GET /api/v3/depth``: ``lastUpdateId`` and price levels (decimal strings), best first."""
        return self._call("publicGetDepth", {"symbol": symbol, "limit": limit})

    def submit(self, cmd: SubmitOrder, timestamp_ms: int | None = None, recv_window_ms: int | None = None) -> dict[str, Any]:
        """``POST /api/v3/order`` with ``newOrderRespType=FULL``; returns the venue's order.

        ``timestamp_ms`` / ``recv_window_ms`` (venue clock) bound when the venue may still execute the
        request: Binance drops it once ``timestamp + recvWindow`` has passed on its clock.
        """
        return self._call("privatePostOrder", order_params(cmd, timestamp_ms, recv_window_ms))

    def cancel(self, symbol: str, client_order_id: str) -> dict[str, Any]:
        """``DELETE /api/v3/order`` by client order id."""
        return self._call("privateDeleteOrder", {"symbol": symbol, "origClientOrderId": client_order_id})

    def query(self, symbol: str, client_order_id: str) -> dict[str, Any]:
        """``GET /api/v3/order`` by client order id; raises :class:`NotFound` if the venue never took it."""
        return self._call("privateGetOrder", {"symbol": symbol, "origClientOrderId": client_order_id})

    def open_orders(self) -> list[dict[str, Any]]:
        """``GET /api/v3/openOrders`` for every symbol."""
        return self._call("privateGetOpenOrders", {})

    def my_trades(self, symbol: str, order_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """``GET /api/v3/myTrades``, optionally of one order."""
        params: dict[str, Any] = {"symbol": symbol, "limit": limit}
        if order_id is not None:
            params["orderId"] = order_id
        return self._call("privateGetMyTrades", params)

    def balances(self) -> dict[str, Decimal]:
        """Total (free + locked) balance per asset from ``GET /api/v3/account``."""
        account = self._call("privateGetAccount", {})
        return {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in account["balances"]}
