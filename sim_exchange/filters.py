"""Binance spot symbol filters and new-order parameter validation.

Turns the string parameters of ``POST /api/v3/order`` into an :class:`OrderRequest` in ticks and
lots, or raises the :class:`BinanceError` Binance would answer (``-1100``, ``-1102``, ``-1106``,
``-1115``..``-1117``, ``-1013 Filter failure: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from sim_exchange import errors
from sim_exchange.engine import OrderRequest, OrderType, Side, TimeInForce
from sim_exchange.symbols import E8, SymbolSpec, e8_str

_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
RESPONSE_TYPES = ("ACK", "RESULT", "FULL")


def symbol_filters(spec: SymbolSpec) -> list[dict[str, object]]:
    """The ``filters`` array of a symbol in ``/api/v3/exchangeInfo``."""
    lot = {
        "minQty": e8_str(spec.min_qty_lots * spec.step_e8),
        "maxQty": e8_str(spec.max_qty_lots * spec.step_e8),
        "stepSize": e8_str(spec.step_e8),
    }
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": e8_str(spec.min_price_ticks * spec.tick_e8),
            "maxPrice": e8_str(spec.max_price_ticks * spec.tick_e8),
            "tickSize": e8_str(spec.tick_e8),
        },
        {"filterType": "LOT_SIZE", **lot},
        {"filterType": "MARKET_LOT_SIZE", **lot},
        {
            "filterType": "NOTIONAL",
            "minNotional": e8_str(int(spec.min_notional * E8)),
            "applyMinToMarket": True,
            "maxNotional": e8_str(int(spec.max_notional * E8)),
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
    ]


def parse_decimal(name: str, text: str) -> Decimal:
    """Parse a decimal parameter with Binance's own pattern; ``-1100`` otherwise."""
    if not _DECIMAL.match(text):
        raise errors.illegal_chars(name)
    try:
        return Decimal(text)
    except InvalidOperation:
        raise errors.illegal_chars(name) from None


def price_ticks(spec: SymbolSpec, price: Decimal) -> int:
    """PRICE_FILTER: the price must be on the tick grid and within [minPrice, maxPrice]."""
    scaled = price * E8
    if scaled != scaled.to_integral_value() or int(scaled) % spec.tick_e8:
        raise errors.filter_failure("PRICE_FILTER")
    ticks = int(scaled) // spec.tick_e8
    if not spec.min_price_ticks <= ticks <= spec.max_price_ticks:
        raise errors.filter_failure("PRICE_FILTER")
    return ticks


def qty_lots(spec: SymbolSpec, qty: Decimal) -> int:
    """LOT_SIZE: the quantity must be on the step grid and within [minQty, maxQty]."""
    scaled = qty * E8
    if scaled != scaled.to_integral_value() or int(scaled) % spec.step_e8:
        raise errors.filter_failure("LOT_SIZE")
    lots = int(scaled) // spec.step_e8
    if not spec.min_qty_lots <= lots <= spec.max_qty_lots:
        raise errors.filter_failure("LOT_SIZE")
    return lots


def check_notional(spec: SymbolSpec, notional: Decimal, is_market: bool) -> None:
    """NOTIONAL: min applies to every order (applyMinToMarket), max only to limit orders."""
    if notional < spec.min_notional or (not is_market and notional > spec.max_notional):
        raise errors.filter_failure("NOTIONAL")


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise errors.mandatory_missing(name)
    return value


def build_order_request(
    spec: SymbolSpec, params: Mapping[str, str], account: str, reference_price_ticks: int | None
) -> OrderRequest:
    """Validate new-order parameters; ``reference_price_ticks`` prices MARKET orders for NOTIONAL."""
    side_text = _required(params, "side")
    type_text = _required(params, "type")
    try:
        side = Side(side_text)
    except ValueError:
        raise errors.invalid_side() from None
    try:
        order_type = OrderType(type_text)
    except ValueError:
        raise errors.invalid_order_type() from None
    client_id = params.get("newClientOrderId") or None
    if client_id is not None and not _CLIENT_ID.match(client_id):
        raise errors.illegal_chars("newClientOrderId")
    response_type = params.get("newOrderRespType")
    if response_type is not None and response_type not in RESPONSE_TYPES:
        raise errors.BinanceError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
    tif: TimeInForce | None = None
    if order_type is OrderType.LIMIT:
        try:
            tif = TimeInForce(_required(params, "timeInForce"))
        except ValueError:
            raise errors.invalid_tif() from None
    elif params.get("timeInForce"):
        raise errors.not_required("timeInForce")
    if order_type is OrderType.MARKET:
        if params.get("price"):
            raise errors.not_required("price")
        has_qty, has_quote = bool(params.get("quantity")), bool(params.get("quoteOrderQty"))
        if has_qty == has_quote:
            raise errors.BinanceError(
                -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
                if not has_qty else "Parameter 'quantity' and 'quoteOrderQty' sent together."
            )
        if has_quote:
            quote = parse_decimal("quoteOrderQty", params["quoteOrderQty"])
            check_notional(spec, quote, is_market=True)
            return OrderRequest(spec.symbol, side, order_type, quote_qty=quote, client_order_id=client_id, account=account)
        lots = qty_lots(spec, parse_decimal("quantity", params["quantity"]))
        if reference_price_ticks:
            check_notional(spec, spec.quote_of(reference_price_ticks, lots), is_market=True)
        return OrderRequest(spec.symbol, side, order_type, qty=lots, client_order_id=client_id, account=account)
    if params.get("quoteOrderQty"):
        raise errors.not_required("quoteOrderQty")
    ticks = price_ticks(spec, parse_decimal("price", _required(params, "price")))
    lots = qty_lots(spec, parse_decimal("quantity", _required(params, "quantity")))
    check_notional(spec, spec.quote_of(ticks, lots), is_market=False)
    return OrderRequest(
        spec.symbol, side, order_type, tif=tif, price=ticks, qty=lots, client_order_id=client_id, account=account
    )
