"""The matching engine: one price-time-priority book per symbol, accounts, balances and fees.

Pure and synchronous: no clock (injected), no I/O. Each operation appends its consequences to an
outbox (:meth:`Engine.take_events`): a :class:`LevelChange` per changed price level (each one
advances the symbol's update id by one, as Binance's diff stream numbers them), a
:class:`TradeEvent` per match and a :class:`TopChange` when the best bid or ask moved. Prices are
integer ticks and quantities integer lots of the symbol's grid, so every figure is exact.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

from sim_exchange import errors
from sim_exchange.symbols import E8, SymbolSpec

E16 = E8 * E8
_COMMISSION_QUANTUM = Decimal("0.00000001")
_UNBOUNDED_LOTS = 10**30


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    LIMIT = "LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"
    MARKET = "MARKET"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class Status(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"


OPEN_STATUSES = frozenset({Status.NEW, Status.PARTIALLY_FILLED})


@dataclass(slots=True)
class Order:
    """An order as the venue knows it; ``price`` in ticks (0 for MARKET), quantities in lots."""

    symbol: str
    order_id: int
    client_order_id: str
    account: str | None
    side: Side
    type: OrderType
    tif: TimeInForce | None
    price: int
    orig_qty: int
    time: int
    orig_quote_qty: Decimal = Decimal(0)
    executed: int = 0
    cum_quote: Decimal = Decimal(0)
    status: Status = Status.NEW
    update_time: int = 0
    lock_left: Decimal = Decimal(0)

    @property
    def remaining(self) -> int:
        return self.orig_qty - self.executed

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A validated new-order request (filters already applied; see ``filters.py``)."""

    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce | None = None
    price: int | None = None
    qty: int | None = None
    quote_qty: Decimal | None = None
    client_order_id: str | None = None
    account: str | None = None


@dataclass(frozen=True, slots=True)
class LevelChange:
    """One price level's new total quantity (0 = level gone) at update id ``update_id``."""

    symbol: str
    update_id: int
    side: Side
    price: int
    qty: int


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """One match; ``buyer_is_maker`` is Binance's ``m`` flag."""

    symbol: str
    trade_id: int
    price: int
    qty: int
    time: int
    buyer_is_maker: bool
    buy_order_id: int
    sell_order_id: int


@dataclass(frozen=True, slots=True)
class TopChange:
    """Best bid and ask after update ``update_id``; price and qty are 0 for an empty side."""

    symbol: str
    update_id: int
    bid_price: int
    bid_qty: int
    ask_price: int
    ask_qty: int


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An account order changed: Binance's ``executionReport`` execution type with the order as it stood then.

    ``order`` is a copy taken at the change (the live order keeps changing); ``fill`` is the
    account's side of the trade for ``TRADE``; ``cancel_client_id`` the cancel's own client id.
    """

    order: Order
    execution: str  # NEW | TRADE | CANCELED | EXPIRED
    time: int
    execution_id: int  # the venue's sequence of account executions (Binance's ``I``)
    fill: Fill | None = None
    cancel_client_id: str = ""


@dataclass(frozen=True, slots=True)
class BalanceChange:
    """A balance moved outside trading (a deposit or withdrawal): Binance's ``balanceUpdate``."""

    account: str
    asset: str
    delta: Decimal
    time: int


Event = LevelChange | TradeEvent | TopChange | OrderUpdate | BalanceChange


@dataclass(frozen=True, slots=True)
class Fill:
    """One fill of an account's order, as in the ``fills`` of a FULL order response and ``/myTrades``."""

    symbol: str
    trade_id: int
    order_id: int
    price: int
    qty: int
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool


@dataclass(slots=True)
class Balance:
    free: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)


@dataclass(slots=True)
class Account:
    """A trading account, identified by its API key; fees are rates (0.001 = 0.1 %)."""

    api_key: str
    api_secret: str
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    balances: dict[str, Balance] = field(default_factory=dict)
    update_time: int = 0
    ed25519_key: bytes | None = None  # raw public key of an Ed25519 API key; None for an HMAC key

    def balance(self, asset: str) -> Balance:
        found = self.balances.get(asset)
        if found is None:
            found = self.balances[asset] = Balance()
        return found


class BookSide:
    """Price levels of one side; each level is an insertion-ordered dict (FIFO = time priority)."""

    __slots__ = ("is_bid", "levels", "prices", "sizes")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.prices: list[int] = []  # ascending
        self.levels: dict[int, dict[int, Order]] = {}
        self.sizes: dict[int, int] = {}

    def best(self) -> int | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.is_bid else self.prices[0]

    def prices_best_first(self) -> Iterator[int]:
        return reversed(self.prices) if self.is_bid else iter(self.prices)

    def add(self, order: Order) -> int:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = {}
            self.sizes[order.price] = 0
            bisect.insort(self.prices, order.price)
        level[order.order_id] = order
        self.sizes[order.price] += order.remaining
        return self.sizes[order.price]

    def reduce(self, order: Order, lots: int) -> int:
        """Take ``lots`` off ``order``'s level (after a fill or removal); drop empty levels and filled orders."""
        price = order.price
        size = self.sizes[price] - lots
        if order.remaining == 0 or not order.is_open:
            del self.levels[price][order.order_id]
        if size == 0:
            del self.levels[price]
            del self.sizes[price]
            del self.prices[bisect.bisect_left(self.prices, price)]
        else:
            self.sizes[price] = size
        return size

    def depth(self, limit: int) -> list[tuple[int, int]]:
        out = []
        for price in self.prices_best_first():
            if len(out) >= limit:
                break
            out.append((price, self.sizes[price]))
        return out


class Book:
    """One symbol's book with its update id, trade id counter and resting orders by id."""

    def __init__(self, spec: SymbolSpec) -> None:
        self.spec = spec
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)
        self.update_id = 0
        self.last_trade_id = 0
        self.last_order_id = 0
        self.resting: dict[int, Order] = {}
        self.top: tuple[int, int, int, int] = (0, 0, 0, 0)

    def side(self, side: Side) -> BookSide:
        return self.bids if side is Side.BUY else self.asks

    def opposite(self, side: Side) -> BookSide:
        return self.asks if side is Side.BUY else self.bids

    def snapshot(self, limit: int) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
        """Return ``(lastUpdateId, bids best-first, asks best-first)`` in ticks and lots."""
        return self.update_id, self.bids.depth(limit), self.asks.depth(limit)

    def crosses(self, side: Side, price: int) -> bool:
        best = self.opposite(side).best()
        if best is None:
            return False
        return price >= best if side is Side.BUY else price <= best


class Engine:
    """Every symbol's book plus the accounts; see the module docstring for the event outbox."""

    def __init__(self, specs: Sequence[SymbolSpec], clock: Callable[[], int]) -> None:
        self.books: dict[str, Book] = {spec.symbol: Book(spec) for spec in specs}
        self.clock = clock  # ms since epoch
        self.accounts: dict[str, Account] = {}
        self.account_orders: dict[tuple[str, str], dict[int, Order]] = {}
        self.account_open: dict[str, dict[tuple[str, int], Order]] = {}
        self.client_index: dict[tuple[str, str, str], Order] = {}
        self.account_fills: dict[tuple[str, str], list[Fill]] = {}
        self.trades: dict[str, list[TradeEvent]] = {spec.symbol: [] for spec in specs}
        self.trades_dropped: dict[str, int] = {spec.symbol: 0 for spec in specs}
        self._events: list[Event] = []
        self._executions = 0
        self.reports_wanted: Callable[[str], bool] = lambda account: True
        """Whether an account's OrderUpdate events are wanted (the WebSocket API: only subscribed accounts')."""

    # ----------------------------------------------------------------- queries
    def book(self, symbol: str) -> Book:
        book = self.books.get(symbol)
        if book is None:
            raise errors.invalid_symbol()
        return book

    def trades_from(self, symbol: str, from_id: int, limit: int) -> list[TradeEvent]:
        """Up to ``limit`` trades with id >= ``from_id`` (ids are 1, 2, ... per symbol)."""
        start = max(from_id - 1 - self.trades_dropped[symbol], 0)
        return self.trades[symbol][start : start + limit]

    def trim_trades(self, keep: int) -> None:
        """Forget all but the newest ``keep`` trades of each symbol (bounded memory on long runs)."""
        for symbol, trades in self.trades.items():
            excess = len(trades) - keep
            if excess > 0:
                del trades[:excess]
                self.trades_dropped[symbol] += excess

    def take_events(self) -> list[Event]:
        """Return and clear the events produced since the last call."""
        events, self._events = self._events, []
        return events

    def add_account(self, account: Account) -> None:
        self.accounts[account.api_key] = account
        self.account_open.setdefault(account.api_key, {})

    def order(self, account: str, symbol: str, order_id: int | None, client_order_id: str | None) -> Order:
        """Look up an account's order by id or client id; ``-2013`` when there is none."""
        found: Order | None = None
        if order_id is not None:
            found = self.account_orders.get((account, symbol), {}).get(order_id)
        elif client_order_id is not None:
            found = self.client_index.get((account, symbol, client_order_id))
        if found is None:
            raise errors.no_such_order()
        return found

    def open_orders(self, account: str, symbol: str | None) -> list[Order]:
        orders = self.account_open.get(account, {}).values()
        return sorted(
            (o for o in orders if symbol is None or o.symbol == symbol), key=lambda o: (o.symbol, o.order_id)
        )

    def fills(self, account: str, symbol: str) -> list[Fill]:
        return self.account_fills.get((account, symbol), [])

    # -------------------------------------------------------------- commands
    def submit(self, req: OrderRequest) -> tuple[Order, list[Fill]]:
        """Match and/or rest a new order; return it with the taker fills of an account order.

        Raises :class:`~sim_exchange.errors.BinanceError` (``-2010``) for a duplicate client
        order id, a LIMIT_MAKER that would take, or an insufficient balance.
        """
        book = self.book(req.symbol)
        account = self._account_of(req.account)
        if req.type is not OrderType.MARKET and req.price is None:
            raise errors.mandatory_missing("price")
        if req.account is not None and req.client_order_id is not None:
            existing = self.client_index.get((req.account, req.symbol, req.client_order_id))
            if existing is not None and existing.is_open:
                raise errors.duplicate_order()
        if req.type is OrderType.LIMIT_MAKER and book.crosses(req.side, req.price or 0):
            raise errors.would_take()
        qty = req.qty if req.qty is not None else _UNBOUNDED_LOTS
        limit = None if req.type is OrderType.MARKET else req.price
        lock_asset, lock = self._required_lock(book, req, limit, qty)
        if account is not None and lock_asset is not None:
            balance = account.balance(lock_asset)
            if balance.free < lock:
                raise errors.insufficient_balance()
            balance.free -= lock
            balance.locked += lock
        now = self.clock()
        book.last_order_id += 1
        order = Order(
            symbol=req.symbol,
            order_id=book.last_order_id,
            client_order_id=req.client_order_id or f"sim-{req.symbol.lower()}-{book.last_order_id}",
            account=req.account,
            side=req.side,
            type=req.type,
            tif=req.tif,
            price=req.price or 0,
            orig_qty=qty,
            time=now,
            update_time=now,
            orig_quote_qty=req.quote_qty or Decimal(0),
            lock_left=lock if account is not None else Decimal(0),
        )
        if req.account is not None:
            self.account_orders.setdefault((req.account, req.symbol), {})[order.order_id] = order
            self.client_index[(req.account, req.symbol, order.client_order_id)] = order
            self._report(order, "NEW", now)
        fills: list[Fill] = []
        if req.tif is TimeInForce.FOK:
            fillable, _ = self._walk(book, req.side, limit, qty, None)
            if fillable < qty:
                self._finish(order, Status.EXPIRED, now)
                return order, fills
        exhausted = self._take(book, order, limit, req.quote_qty, fills, now)
        if req.quote_qty is not None:
            order.orig_qty = order.executed
        final: Status | None = None
        if order.remaining > 0 and req.type is not OrderType.MARKET and req.tif in (None, TimeInForce.GTC):
            self._rest(book, order)
        elif order.remaining > 0 or (req.quote_qty is not None and (order.executed == 0 or exhausted)):
            final = Status.EXPIRED
        else:
            final = Status.FILLED
        self._taker_updates(order, fills, final is Status.FILLED, now)
        if final is not None:
            self._finish(order, final, now)
        self._emit_top(book)
        return order, fills

    def cancel(self, account: str, symbol: str, order_id: int | None, client_order_id: str | None,
               cancel_client_id: str = "") -> Order:
        """Cancel an account's open order; ``-2011`` when it is unknown or already closed.

        ``cancel_client_id`` is the cancel request's own client id (``newClientOrderId``), reported
        as the ``c`` of the ``CANCELED`` executionReport.
        """
        try:
            order = self.order(account, symbol, order_id, client_order_id)
        except errors.BinanceError:
            raise errors.cancel_rejected() from None
        if not order.is_open:
            raise errors.cancel_rejected()
        self._cancel(self.books[symbol], order, cancel_client_id)
        return order

    def adjust_balance(self, account: str, asset: str, delta: Decimal) -> Balance:
        """Move an account's free balance outside trading (a deposit, or a withdrawal when negative)."""
        holder = self._account_of(account)
        assert holder is not None
        balance = holder.balance(asset)
        if balance.free + delta < 0:
            raise errors.insufficient_balance()
        balance.free += delta
        now = self.clock()
        holder.update_time = now
        self._events.append(BalanceChange(account, asset, delta, now))
        return balance

    def cancel_resting(self, symbol: str, order_id: int) -> bool:
        """Cancel any resting order by id (the background flow's cancels); False if it is gone."""
        book = self.books[symbol]
        order = book.resting.get(order_id)
        if order is None:
            return False
        self._cancel(book, order)
        return True

    # --------------------------------------------------------------- internals
    def _account_of(self, key: str | None) -> Account | None:
        if key is None:
            return None
        account = self.accounts.get(key)
        if account is None:
            raise errors.rejected_api_key()
        return account

    def _required_lock(
        self, book: Book, req: OrderRequest, limit: int | None, qty: int
    ) -> tuple[str | None, Decimal]:
        spec = book.spec
        if req.account is None:
            return None, Decimal(0)
        if req.type is not OrderType.MARKET:
            assert req.price is not None and req.qty is not None
            if req.side is Side.BUY:
                return spec.quote, spec.quote_of(req.price, req.qty)
            return spec.base, spec.qty_dec(req.qty)
        lots, quote = self._walk(book, req.side, limit, qty, req.quote_qty)
        if req.side is Side.BUY:
            return spec.quote, quote
        return spec.base, spec.qty_dec(lots)

    def _walk(
        self, book: Book, side: Side, limit: int | None, max_lots: int, quote_budget: Decimal | None
    ) -> tuple[int, Decimal]:
        """What a taker could fill now without changing anything: ``(lots, quote amount)``."""
        spec = book.spec
        opposite = book.opposite(side)
        lots_total, quote_e16 = 0, 0
        budget_e16 = int(quote_budget * E16) if quote_budget is not None else None
        for price in opposite.prices_best_first():
            if lots_total >= max_lots or (limit is not None and _beyond(side, price, limit)):
                break
            unit = price * spec.tick_e8 * spec.step_e8
            take = min(max_lots - lots_total, opposite.sizes[price])
            if budget_e16 is not None:
                take = min(take, (budget_e16 - quote_e16) // unit)
                if take == 0:
                    break
            lots_total += take
            quote_e16 += take * unit
        return lots_total, Decimal(quote_e16) / E16

    def _take(
        self,
        book: Book,
        taker: Order,
        limit: int | None,
        quote_budget: Decimal | None,
        fills: list[Fill],
        now: int,
    ) -> bool:
        """Match ``taker`` against the opposite side; True when the opposite side ran dry."""
        spec = book.spec
        opposite = book.opposite(taker.side)
        budget_e16 = int(quote_budget * E16) if quote_budget is not None else None
        spent_e16 = 0
        while taker.remaining > 0:
            price = opposite.best()
            if price is None:
                return True
            if limit is not None and _beyond(taker.side, price, limit):
                return False
            cap = taker.remaining
            if budget_e16 is not None:
                unit = price * spec.tick_e8 * spec.step_e8
                cap = min(cap, (budget_e16 - spent_e16) // unit)
                if cap == 0:
                    return False
            maker = next(iter(opposite.levels[price].values()))
            lots = min(cap, maker.remaining)
            self._execute(book, opposite, maker, taker, price, lots, fills, now)
            if budget_e16 is not None:
                spent_e16 += price * spec.tick_e8 * spec.step_e8 * lots
        return False

    def _execute(
        self,
        book: Book,
        opposite: BookSide,
        maker: Order,
        taker: Order,
        price: int,
        lots: int,
        fills: list[Fill],
        now: int,
    ) -> None:
        spec = book.spec
        quote = spec.quote_of(price, lots)
        book.last_trade_id += 1
        trade_id = book.last_trade_id
        for order in (maker, taker):
            order.executed += lots
            order.cum_quote += quote
            order.update_time = now
        maker.status = Status.FILLED if maker.remaining == 0 else Status.PARTIALLY_FILLED
        taker.status = Status.PARTIALLY_FILLED
        if maker.status is Status.FILLED:
            book.resting.pop(maker.order_id, None)
        size = opposite.reduce(maker, lots)
        book.update_id += 1
        self._events.append(LevelChange(spec.symbol, book.update_id, maker.side, price, size))
        buyer, seller = (maker, taker) if maker.side is Side.BUY else (taker, maker)
        trade = TradeEvent(
            spec.symbol, trade_id, price, lots, now, maker.side is Side.BUY, buyer.order_id, seller.order_id
        )
        self.trades[spec.symbol].append(trade)
        self._events.append(trade)
        self._settle(book, maker, price, lots, quote, True, trade_id, now, None)
        self._settle(book, taker, price, lots, quote, False, trade_id, now, fills)
        if maker.status is Status.FILLED:
            self._close(maker)

    def _settle(
        self,
        book: Book,
        order: Order,
        price: int,
        lots: int,
        quote: Decimal,
        is_maker: bool,
        trade_id: int,
        now: int,
        fills: list[Fill] | None,
    ) -> None:
        if order.account is None:
            return
        spec = book.spec
        account = self.accounts[order.account]
        rate = account.maker_fee if is_maker else account.taker_fee
        base_qty = spec.qty_dec(lots)
        if order.side is Side.BUY:
            consume = quote if order.type is OrderType.MARKET else spec.quote_of(order.price, lots)
            paying = account.balance(spec.quote)
            paying.locked -= consume
            paying.free += consume - quote
            order.lock_left -= consume
            commission = (base_qty * rate).quantize(_COMMISSION_QUANTUM, rounding=ROUND_DOWN)
            account.balance(spec.base).free += base_qty - commission
            commission_asset = spec.base
        else:
            paying = account.balance(spec.base)
            paying.locked -= base_qty
            order.lock_left -= base_qty
            commission = (quote * rate).quantize(_COMMISSION_QUANTUM, rounding=ROUND_DOWN)
            account.balance(spec.quote).free += quote - commission
            commission_asset = spec.quote
        account.update_time = now
        fill = Fill(
            spec.symbol, trade_id, order.order_id, price, lots, quote, commission, commission_asset, now,
            order.side is Side.BUY, is_maker,
        )
        self.account_fills.setdefault((order.account, spec.symbol), []).append(fill)
        if fills is not None:
            fills.append(fill)
        else:  # a resting order traded: its report now (the taker's come once it is done)
            self._report(order, "TRADE", now, fill)

    def _report(self, order: Order, execution: str, now: int, fill: Fill | None = None,
                cancel_client_id: str = "") -> None:
        self._executions += 1
        if not self._reported(order):
            return
        self._events.append(OrderUpdate(replace(order), execution, now, self._executions, fill, cancel_client_id))

    def _reported(self, order: Order) -> bool:
        # nobody listens to an unwanted account: no copy of its order (a REST-only client pays nothing for push)
        return order.account is not None and self.reports_wanted(order.account)

    def _taker_updates(self, order: Order, fills: list[Fill], filled: bool, now: int) -> None:
        # the taker's TRADE reports, made once its quantity is final (a quoteOrderQty order's
        # origQty is only known then); each carries the cumulative state after its fill
        if not self._reported(order):
            self._executions += len(fills)
            return
        executed, cum_quote = 0, Decimal(0)
        for i, fill in enumerate(fills):
            executed += fill.qty
            cum_quote += fill.quote_qty
            last = i == len(fills) - 1
            status = Status.FILLED if last and filled else Status.PARTIALLY_FILLED
            state = replace(order, executed=executed, cum_quote=cum_quote, status=status, update_time=fill.time)
            self._report(state, "TRADE", fill.time, fill)

    def _rest(self, book: Book, order: Order) -> None:
        order.status = Status.NEW if order.executed == 0 else Status.PARTIALLY_FILLED
        size = book.side(order.side).add(order)
        book.resting[order.order_id] = order
        book.update_id += 1
        self._events.append(LevelChange(order.symbol, book.update_id, order.side, order.price, size))
        if order.account is not None:
            self.account_open[order.account][(order.symbol, order.order_id)] = order

    def _cancel(self, book: Book, order: Order, cancel_client_id: str = "") -> None:
        lots = order.remaining
        now = self.clock()
        order.status = Status.CANCELED
        order.update_time = now
        book.resting.pop(order.order_id, None)
        size = book.side(order.side).reduce(order, lots)
        book.update_id += 1
        self._events.append(LevelChange(order.symbol, book.update_id, order.side, order.price, size))
        self._close(order)
        if order.account is not None:
            self._report(order, "CANCELED", now, cancel_client_id=cancel_client_id or default_cancel_id(order.order_id))
        self._emit_top(book)

    def _finish(self, order: Order, status: Status, now: int) -> None:
        order.status = status
        order.update_time = now
        self._close(order)
        if status is Status.EXPIRED and order.account is not None:
            self._report(order, "EXPIRED", now)

    def _close(self, order: Order) -> None:
        """Release what an order still locks once it can no longer trade."""
        if order.account is None:
            return
        self.account_open[order.account].pop((order.symbol, order.order_id), None)
        if order.lock_left:
            spec = self.books[order.symbol].spec
            balance = self.accounts[order.account].balance(spec.quote if order.side is Side.BUY else spec.base)
            balance.locked -= order.lock_left
            balance.free += order.lock_left
            order.lock_left = Decimal(0)

    def _emit_top(self, book: Book) -> None:
        bid, ask = book.bids.best(), book.asks.best()
        top = (
            bid or 0,
            book.bids.sizes[bid] if bid is not None else 0,
            ask or 0,
            book.asks.sizes[ask] if ask is not None else 0,
        )
        if top != book.top:
            book.top = top
            self._events.append(TopChange(book.spec.symbol, book.update_id, *top))


def default_cancel_id(order_id: int) -> str:
    """The client id of a cancel sent without ``newClientOrderId``."""
    return f"cancel-{order_id}"


def _beyond(side: Side, price: int, limit: int) -> bool:
    return price > limit if side is Side.BUY else price < limit


def apply_level_changes(
    bids: dict[int, int], asks: dict[int, int], changes: Iterable[LevelChange]
) -> None:
    """Apply level changes to plain ``price -> qty`` dicts, as a market-data client would."""
    for change in changes:
        levels = bids if change.side is Side.BUY else asks
        if change.qty == 0:
            levels.pop(change.price, None)
        else:
            levels[change.price] = change.qty
