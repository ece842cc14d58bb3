"""The backtest's venue: the executor's REST venue interface over a matching engine fed by the archive.

:class:`executor.trader.Trader` calls ``submit``, ``cancel``, ``query`` and ``my_trades`` and reads Binance
payloads back (``newOrderRespType=FULL``, order and trade objects), so :class:`BacktestVenue` answers those
four calls in Binance's shapes and the trader, its state machine, policy and risk run unchanged.

Matching (:class:`MatchingEngine`), per instrument, against the archived market as it was when the order
reached the venue (the engine reads the archive ahead of the executor by the latency, :class:`Tape`):

* the visible book is the executor's own :class:`executor.market.MarketView` (the one ``orderbook``),
  fed with the archived ``md.book``/``md.bbo``/``md.health`` records;
* ``LIMIT IOC`` takes the visible opposite levels up to its limit price, each level at most its
  visible quantity; the rest expires (``EXPIRED``, as Binance reports an IOC remainder);
* ``LIMIT_MAKER`` is rejected (-2010) when it would take; else it rests behind the visible quantity at
  its price and fills by :class:`backtest.fills.QueuePosition` from archived trades;
* fees: ``maker_fee`` / ``taker_fee`` as Binance charges them: of the base quantity received in the base
  asset for a buy, of the quote received in the quote asset for a sell.

Nothing the simulation does changes the archived market (no impact, see ``backtest.fills``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from backtest.fills import QueuePosition, queue_ahead
from backtest.replay import Event
from executor.commands import OrderType, Side, SubmitOrder, TimeInForce
from executor.market import MarketView
from executor.venue import NotFound, Rejected
from schemas.decimals import decimal_text

ZERO = Decimal(0)


class Tape:
    """The archive's events read once: the engine consumes them as far ahead as it must, the driver after it."""

    def __init__(self, events: Iterator[Event], engine: MatchingEngine) -> None:
        self._events = events
        self._engine = engine
        self._pending: deque[Event] = deque()  # seen by the engine, not yet by the driver
        self._next: Event | None = next(events, None)
        engine.tape = self

    def advance(self, until_ns: int) -> None:
        """Feed the engine every event received at or before ``until_ns``."""
        while self._next is not None and self._next.ts <= until_ns:
            self._pull()

    def _pull(self) -> Event:
        event = self._next
        assert event is not None
        self._next = next(self._events, None)
        self._engine.on_market(event)
        self._pending.append(event)
        return event

    def __iter__(self) -> Iterator[Event]:
        while True:
            if self._pending:
                yield self._pending.popleft()
            elif self._next is not None:
                self._pull()
            else:
                return


@dataclass
class SimOrder:
    """One of our orders at the simulated venue."""

    order_id: int
    command: SubmitOrder
    status: str = "NEW"
    executed: Decimal = ZERO
    quote: Decimal = ZERO
    updated_ms: int = 0
    queue: QueuePosition | None = None
    trades: list[dict[str, Any]] = field(default_factory=list)


class MatchingEngine:
    """Our orders against the archived market, in archive time."""

    def __init__(self, depth_levels: int, maker_fee: Decimal, taker_fee: Decimal,
                 assets: Callable[[str], tuple[str, str]]) -> None:
        self.market = MarketView(depth_levels)
        self.maker_fee, self.taker_fee = maker_fee, taker_fee
        self.assets = assets  # symbol -> (base asset, quote asset)
        self.now = 0  # archive receive time the engine has reached (ns)
        self.orders: dict[str, SimOrder] = {}  # client order id -> order
        self.by_id: dict[str, SimOrder] = {}  # venue order id -> order
        self.resting: dict[str, list[SimOrder]] = {}  # symbol -> resting passive orders
        self.tape: Tape | None = None
        self._order_ids = 0
        self._trade_ids = 0

    def at(self, ns: int) -> None:
        """Bring the archive up to ``ns`` (never back: an earlier time means now)."""
        assert self.tape is not None
        self.tape.advance(ns)
        self.now = max(self.now, ns)

    def on_market(self, event: Event) -> None:
        """Apply one archived record: the book, then what it does to our resting orders."""
        record = event.record
        self.now = max(self.now, event.ts)
        if event.topic == "md.trades":
            for order in self.resting.get(record["symbol"], ()):
                assert order.queue is not None
                qty = order.queue.on_trade(Decimal(record["price"]), Decimal(record["qty"]), Side(record["side"]))
                if qty:
                    self._fill(order, order.command.price, qty, maker=True, ms=record["ts_event"] // 1_000_000)
            self._drop_done(record["symbol"])
            return
        if event.topic == "md.bbo":
            self.market.on_bbo(record)
        elif event.topic == "md.book":
            self.market.on_book(record)
        else:
            self.market.on_health(record)
            return
        book = self.market.snapshot(record["venue"], record["symbol"])
        for order in self.resting.get(record["symbol"], ()) if book else ():
            assert order.queue is not None and book is not None
            order.queue.on_depth(queue_ahead(book.same(order.command.side), order.command.price))

    def _drop_done(self, symbol: str) -> None:
        orders = self.resting.get(symbol)
        if orders:
            self.resting[symbol] = [o for o in orders if o.status in ("NEW", "PARTIALLY_FILLED")]

    def _fill(self, order: SimOrder, price: Decimal, qty: Decimal, maker: bool, ms: int) -> None:
        self._trade_ids += 1
        notional = price * qty
        rate = self.maker_fee if maker else self.taker_fee
        buy = order.command.side is Side.BUY
        fee = (qty if buy else notional) * rate
        order.executed += qty
        order.quote += notional
        order.updated_ms = ms
        order.status = "FILLED" if order.executed >= order.command.qty else "PARTIALLY_FILLED"
        order.trades.append({
            "id": self._trade_ids, "orderId": order.order_id, "price": decimal_text(price), "qty": decimal_text(qty),
            "commission": decimal_text(fee.normalize()), "commissionAsset": self.assets(order.command.symbol)[0 if buy else 1],
            "isBuyer": buy, "isMaker": maker, "time": ms,
        })

    def place(self, cmd: SubmitOrder) -> SimOrder:
        """Match a new order now; raise :class:`Rejected` as Binance would."""
        if cmd.client_order_id in self.orders:
            raise Rejected("Duplicate order sent.", -2010)
        book = self.market.snapshot(cmd.venue, cmd.symbol)
        if book is None:
            raise Rejected("Market is closed.", -1013)
        self._order_ids += 1
        ms = self.now // 1_000_000
        order = SimOrder(self._order_ids, cmd, updated_ms=ms)
        opposite = book.opposite(cmd.side)
        crosses = [(p, q) for p, q in opposite if (p <= cmd.price if cmd.side is Side.BUY else p >= cmd.price)]
        if cmd.order_type is OrderType.LIMIT_MAKER:
            if crosses:
                raise Rejected("Order would immediately match and take.", -2010)
            order.queue = QueuePosition(cmd.side, cmd.price, cmd.qty, queue_ahead(book.same(cmd.side), cmd.price))
            self.resting.setdefault(cmd.symbol, []).append(order)
        else:
            for price, qty in crosses:
                left = cmd.qty - order.executed
                if left <= 0:
                    break
                self._fill(order, price, min(left, qty), maker=False, ms=ms)
            if order.executed < cmd.qty and cmd.time_in_force is TimeInForce.IOC:
                order.status = "EXPIRED"
        self.orders[cmd.client_order_id] = order
        self.by_id[str(order.order_id)] = order
        return order

    def cancel(self, client_order_id: str) -> SimOrder:
        """Cancel a resting order now; raise :class:`NotFound` (-2011) for one that is closed or unknown."""
        order = self.orders.get(client_order_id)
        if order is None or order.status not in ("NEW", "PARTIALLY_FILLED"):
            raise NotFound("Unknown order sent.", -2011)
        order.status = "CANCELED"
        order.updated_ms = self.now // 1_000_000
        self._drop_done(order.command.symbol)
        return order


def order_payload(order: SimOrder, full: bool = False) -> dict[str, Any]:
    """The Binance order object (``fills`` with ``newOrderRespType=FULL``)."""
    cmd = order.command
    payload: dict[str, Any] = {
        "symbol": cmd.symbol, "orderId": order.order_id, "clientOrderId": cmd.client_order_id,
        "price": decimal_text(cmd.price), "origQty": decimal_text(cmd.qty), "executedQty": decimal_text(order.executed),
        "cummulativeQuoteQty": decimal_text(order.quote), "status": order.status,
        "timeInForce": cmd.time_in_force.value if cmd.time_in_force else "GTC", "type": cmd.order_type.value,
        "side": cmd.side.value.upper(), "transactTime": order.updated_ms, "updateTime": order.updated_ms,
    }
    if full:
        payload["fills"] = [{"price": t["price"], "qty": t["qty"], "commission": t["commission"],
                             "commissionAsset": t["commissionAsset"], "tradeId": t["id"]} for t in order.trades]
    return payload


class BacktestVenue:
    """The four calls :class:`executor.trader.Trader` makes, answered by the engine at the order's arrival time.

    Each call reaches the engine one venue leg after the executor's clock and returns one leg later:
    ``clock`` reads the driver's time and ``busy`` moves it past the answer (the trader's REST call blocks).
    """

    def __init__(self, engine: MatchingEngine, clock: Callable[[], int], one_way: Callable[[], int],
                 busy: Callable[[int], None]) -> None:
        self.engine, self.clock, self.one_way, self.busy = engine, clock, one_way, busy

    def _arrive(self) -> None:
        self.engine.at(self.clock() + self.one_way())

    def _answered(self) -> None:
        self.busy(self.engine.now + self.one_way())

    def submit(self, cmd: SubmitOrder, timestamp_ms: int | None = None, recv_window_ms: int | None = None) -> dict[str, Any]:
        """``POST /api/v3/order`` (FULL)."""
        self._arrive()
        try:
            return order_payload(self.engine.place(cmd), full=True)
        finally:
            self._answered()

    def cancel(self, symbol: str, client_order_id: str) -> dict[str, Any]:
        """``DELETE /api/v3/order``."""
        self._arrive()
        try:
            return order_payload(self.engine.cancel(client_order_id))
        finally:
            self._answered()

    def query(self, symbol: str, client_order_id: str) -> dict[str, Any]:
        """``GET /api/v3/order``."""
        self._arrive()
        try:
            order = self.engine.orders.get(client_order_id)
            if order is None:
                raise NotFound("Order does not exist.", -2013)
            return order_payload(order)
        finally:
            self._answered()

    def my_trades(self, symbol: str, order_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """``GET /api/v3/myTrades`` of one order (the trader asks per order)."""
        self._arrive()
        try:
            order = self.engine.by_id.get(order_id or "")
            return order.trades[:limit] if order is not None else []
        finally:
            self._answered()
