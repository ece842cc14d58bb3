"""Binance spot JSON payloads, field for field: websocket events and REST bodies.

Pure functions from engine objects to ``dict``/``list``; every price and quantity is an exact
8-decimal string as Binance prints them.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from sim_exchange.engine import (
    Account,
    BalanceChange,
    Book,
    Fill,
    Order,
    OrderType,
    OrderUpdate,
    TopChange,
    TradeEvent,
)
from sim_exchange.filters import symbol_filters
from sim_exchange.symbols import SymbolSpec, dec_str

ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET"]
STP_MODES = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]
ZERO = "0.00000000"


def trade_event(spec: SymbolSpec, trade: TradeEvent, event_time: int) -> dict[str, Any]:
    """``<symbol>@trade``: ``{"e":"trade","E","s","t","p","q","T","m","M"}``."""
    return {
        "e": "trade",
        "E": event_time,
        "s": spec.symbol,
        "t": trade.trade_id,
        "p": spec.price_str(trade.price),
        "q": spec.qty_str(trade.qty),
        "T": trade.time,
        "m": trade.buyer_is_maker,
        "M": True,
    }


def depth_event(
    spec: SymbolSpec, first_id: int, last_id: int, bids: dict[int, int], asks: dict[int, int], event_time: int
) -> dict[str, Any]:
    """``<symbol>@depth[@100ms]``: ``{"e":"depthUpdate","E","s","U","u","b","a"}`` (final level qty, 0 = gone)."""
    return {
        "e": "depthUpdate",
        "E": event_time,
        "s": spec.symbol,
        "U": first_id,
        "u": last_id,
        "b": [[spec.price_str(p), spec.qty_str(q)] for p, q in sorted(bids.items(), reverse=True)],
        "a": [[spec.price_str(p), spec.qty_str(q)] for p, q in sorted(asks.items())],
    }


def book_ticker_event(spec: SymbolSpec, top: TopChange) -> dict[str, Any]:
    """``<symbol>@bookTicker``: ``{"u","s","b","B","a","A"}``."""
    return {
        "u": top.update_id,
        "s": spec.symbol,
        "b": spec.price_str(top.bid_price),
        "B": spec.qty_str(top.bid_qty),
        "a": spec.price_str(top.ask_price),
        "A": spec.qty_str(top.ask_qty),
    }


def depth_snapshot(book: Book, limit: int) -> dict[str, Any]:
    """``GET /api/v3/depth``."""
    spec = book.spec
    update_id, bids, asks = book.snapshot(limit)
    return {
        "lastUpdateId": update_id,
        "bids": [[spec.price_str(p), spec.qty_str(q)] for p, q in bids],
        "asks": [[spec.price_str(p), spec.qty_str(q)] for p, q in asks],
    }


def rest_trade(spec: SymbolSpec, trade: TradeEvent) -> dict[str, Any]:
    """An element of ``GET /api/v3/trades`` and ``/historicalTrades``."""
    return {
        "id": trade.trade_id,
        "price": spec.price_str(trade.price),
        "qty": spec.qty_str(trade.qty),
        "quoteQty": dec_str(spec.quote_of(trade.price, trade.qty)),
        "time": trade.time,
        "isBuyerMaker": trade.buyer_is_maker,
        "isBestMatch": True,
    }


def rest_book_ticker(book: Book) -> dict[str, Any]:
    spec = book.spec
    bid, bid_qty, ask, ask_qty = book.top
    return {
        "symbol": spec.symbol,
        "bidPrice": spec.price_str(bid),
        "bidQty": spec.qty_str(bid_qty),
        "askPrice": spec.price_str(ask),
        "askQty": spec.qty_str(ask_qty),
    }


def exchange_info(specs: Iterable[SymbolSpec], rate_limits: list[dict[str, Any]], server_time: int) -> dict[str, Any]:
    """``GET /api/v3/exchangeInfo``."""
    return {
        "timezone": "UTC",
        "serverTime": server_time,
        "rateLimits": rate_limits,
        "exchangeFilters": [],
        "symbols": [
            {
                "symbol": spec.symbol,
                "status": "TRADING",
                "baseAsset": spec.base,
                "baseAssetPrecision": 8,
                "quoteAsset": spec.quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": ORDER_TYPES,
                "icebergAllowed": False,
                "ocoAllowed": False,
                "otoAllowed": False,
                "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": False,
                "cancelReplaceAllowed": False,
                "amendAllowed": False,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": symbol_filters(spec),
                "permissions": [],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "NONE",
                "allowedSelfTradePreventionModes": STP_MODES,
            }
            for spec in specs
        ],
    }


def _order_common(spec: SymbolSpec, order: Order) -> dict[str, Any]:
    return {
        "symbol": spec.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": spec.price_str(order.price),
        "origQty": spec.qty_str(order.orig_qty),
        "executedQty": spec.qty_str(order.executed),
        "origQuoteOrderQty": dec_str(order.orig_quote_qty),
        "cummulativeQuoteQty": dec_str(order.cum_quote),
        "status": order.status.value,
        "timeInForce": (order.tif.value if order.tif else "GTC"),
        "type": order.type.value,
        "side": order.side.value,
    }


def order_status(spec: SymbolSpec, order: Order) -> dict[str, Any]:
    """``GET /api/v3/order`` and the elements of ``GET /api/v3/openOrders``."""
    return {
        **_order_common(spec, order),
        "stopPrice": ZERO,
        "icebergQty": ZERO,
        "time": order.time,
        "updateTime": order.update_time,
        "isWorking": order.is_open or order.executed > 0,
        "workingTime": order.time,
        "selfTradePreventionMode": "NONE",
    }


def fill_json(spec: SymbolSpec, fill: Fill) -> dict[str, Any]:
    return {
        "price": spec.price_str(fill.price),
        "qty": spec.qty_str(fill.qty),
        "commission": dec_str(fill.commission),
        "commissionAsset": fill.commission_asset,
        "tradeId": fill.trade_id,
    }


def new_order(spec: SymbolSpec, order: Order, fills: Sequence[Fill], response_type: str | None) -> dict[str, Any]:
    """``POST /api/v3/order`` as ACK, RESULT or FULL (MARKET and LIMIT default to FULL)."""
    if response_type is None:
        response_type = "FULL" if order.type in (OrderType.MARKET, OrderType.LIMIT) else "ACK"
    ack = {
        "symbol": spec.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": order.time,
    }
    if response_type == "ACK":
        return ack
    common = _order_common(spec, order)
    result = {**ack, **common, "workingTime": order.time, "selfTradePreventionMode": "NONE"}
    if response_type == "FULL":
        result["fills"] = [fill_json(spec, f) for f in fills]
    return result


def cancel_result(spec: SymbolSpec, order: Order, cancel_client_id: str, transact_time: int) -> dict[str, Any]:
    """``DELETE /api/v3/order`` and the elements of ``DELETE /api/v3/openOrders``."""
    common = _order_common(spec, order)
    return {
        "symbol": spec.symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_id,
        "transactTime": transact_time,
        **{k: v for k, v in common.items() if k not in ("symbol", "orderId", "orderListId", "clientOrderId")},
        "selfTradePreventionMode": "NONE",
    }


def my_trade(spec: SymbolSpec, fill: Fill) -> dict[str, Any]:
    """An element of ``GET /api/v3/myTrades``."""
    return {
        "symbol": spec.symbol,
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "orderListId": -1,
        "price": spec.price_str(fill.price),
        "qty": spec.qty_str(fill.qty),
        "quoteQty": dec_str(fill.quote_qty),
        "commission": dec_str(fill.commission),
        "commissionAsset": fill.commission_asset,
        "time": fill.time,
        "isBuyer": fill.is_buyer,
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }


def account_info(account: Account, omit_zero: bool) -> dict[str, Any]:
    """``GET /api/v3/account``."""
    balances = [
        {"asset": asset, "free": dec_str(b.free), "locked": dec_str(b.locked)}
        for asset, b in sorted(account.balances.items())
        if not (omit_zero and b.free == 0 and b.locked == 0)
    ]
    return {
        "makerCommission": int(account.maker_fee * 10000),
        "takerCommission": int(account.taker_fee * 10000),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": dec_str(account.maker_fee),
            "taker": dec_str(account.taker_fee),
            "buyer": ZERO,
            "seller": ZERO,
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": account.update_time,
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": zlib.crc32(account.api_key.encode()),
    }


def execution_report(spec: SymbolSpec, update: OrderUpdate, event_time: int) -> dict[str, Any]:
    """The user-data ``executionReport`` of one order change (every field Binance documents for spot)."""
    order, fill = update.order, update.fill
    canceled = update.execution == "CANCELED"
    return {
        "e": "executionReport",
        "E": event_time,
        "s": spec.symbol,
        "c": update.cancel_client_id if canceled else order.client_order_id,
        "S": order.side.value,
        "o": order.type.value,
        "f": order.tif.value if order.tif else "GTC",
        "q": spec.qty_str(order.orig_qty),
        "p": spec.price_str(order.price),
        "P": ZERO,
        "F": ZERO,
        "g": -1,
        "C": order.client_order_id if canceled else "",
        "x": update.execution,
        "X": order.status.value,
        "r": "NONE",
        "i": order.order_id,
        "l": spec.qty_str(fill.qty) if fill else ZERO,
        "z": spec.qty_str(order.executed),
        "L": spec.price_str(fill.price) if fill else ZERO,
        "n": dec_str(fill.commission) if fill else "0",
        "N": fill.commission_asset if fill else None,
        "T": update.time,
        "t": fill.trade_id if fill else -1,
        "I": update.execution_id,
        "w": order.is_open and order.type is not OrderType.MARKET,
        "m": fill.is_maker if fill else False,
        "M": False,
        "O": order.time,
        "Z": dec_str(order.cum_quote),
        "Y": dec_str(fill.quote_qty) if fill else ZERO,
        "Q": dec_str(order.orig_quote_qty),
        "W": order.time,
        "V": "NONE",
    }


def account_position(account: Account, assets: Sequence[str], event_time: int) -> dict[str, Any]:
    """``outboundAccountPosition``: the balances of ``assets`` after an operation changed them."""
    return {
        "e": "outboundAccountPosition",
        "E": event_time,
        "u": account.update_time,
        "B": [{"a": a, "f": dec_str(account.balance(a).free), "l": dec_str(account.balance(a).locked)}
              for a in assets],
    }


def balance_update(change: BalanceChange, event_time: int) -> dict[str, Any]:
    """``balanceUpdate``: a deposit or withdrawal (``d`` is the signed change)."""
    return {"e": "balanceUpdate", "E": event_time, "a": change.asset, "d": dec_str(change.delta), "T": change.time}
