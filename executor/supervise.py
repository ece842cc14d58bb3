"""Watching the venue while trading: periodic balance reconciliation and its breach, the venue clock, cancel-all.

The executor's view (positions from fills, its live orders) is compared with the venue's account every
``reconcile_interval_ms``; a difference that persists beyond ``reconcile_max_diff_quote`` moves trading
to ``reconcile_breach_state``.  What to publish and whether a difference is a breach are pure
(:func:`split_open_orders`, :func:`assess`); the venue calls and the reactions live in the classes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from executor.events import ExecutorEvents
from executor.ids import parse_client_order_id
from executor.market import MarketView, Quote
from executor.metrics import ExecutorMetrics
from executor.order import Order, OrderTrigger
from executor.outbox import KafkaOutbox
from executor.positions import Positions
from executor.reconcile import BalanceCheck, balance_check
from executor.risk import RiskEngine, TradingState
from executor.trader import SignalRun, Trader
from executor.venue import BinanceVenue, VenueClock, VenueError
from infra.settings import ExecutorSettings

log = logging.getLogger(__name__)

OrderView = list[tuple[str, str, bool]]  # (symbol, client order id, ours) of the open orders that differ
CLOCK_RETRY_NS = 5_000_000_000  # a failed clock measurement is tried again after this
CONFIRM_CHECK_NS = 300_000_000  # the confirming second check after one asked for by check_soon


def state_rank(state: TradingState) -> int:
    """How strict ``state`` is: ACTIVE < REDUCING < HALTED (the ``executor_trading_state`` gauge's value)."""
    return list(TradingState).index(state)


def valuation_prices(assets: Mapping[str, tuple[str, str]], quote: Callable[[str], Quote | None]) -> dict[str, Decimal]:
    """Prices in quote units to value balance differences: 1 for each quote asset, the mid for each base known."""
    prices: dict[str, Decimal] = {}
    for symbol, (base, quote_asset) in assets.items():
        prices[quote_asset] = Decimal(1)
        q = quote(symbol)
        if q is not None:
            prices[base] = q.mid
    return prices


def split_open_orders(
    open_orders: list[dict[str, Any]], live: Collection[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The venue's open orders that are not ours (foreign), and ours that the executor does not manage."""
    foreign = [o for o in open_orders if parse_client_order_id(o.get("clientOrderId", "")) is None]
    unmanaged = [o for o in open_orders if o not in foreign and o["clientOrderId"] not in live]
    return foreign, unmanaged


def order_view(foreign: list[dict[str, Any]], unmanaged: list[dict[str, Any]]) -> OrderView:
    """The differing open orders as ``(symbol, client order id, ours)``, sorted."""
    return sorted((o["symbol"], o.get("clientOrderId", ""), o not in foreign) for o in foreign + unmanaged)


def is_settling(live: Iterable[Order], runs: Iterable[SignalRun]) -> bool:
    """A fill may still be on its way: an order's outcome is unsettled, or a run waits for its last Fills."""
    return any(o.is_unsettled for o in live) or any(r.finishing and not r.done for r in runs)


@dataclass(frozen=True)
class Assessment:
    """What one reconciliation decides: publish its view on executor.health, and whether it is a breach."""

    publish: bool
    breach: bool


def assess(
    check: BalanceCheck, view: tuple[dict[str, Decimal], OrderView], settling: bool, last_diff: dict[str, Decimal] | None,
    last_view: tuple[dict[str, Decimal], OrderView] | None, published_view: tuple[dict[str, Decimal], OrderView],
    max_diff_quote: Decimal,
) -> Assessment:
    """A view is published once it is seen twice in a row while nothing settles (or breaches) and differs from
    the last one published; a breach is the same balance difference twice, nothing settling, worth over the max."""
    persistent = bool(check.diff) and check.diff == last_diff and not settling
    breach = persistent and check.value > max_diff_quote
    steady = view == last_view and not settling  # not a fill still being fetched
    return Assessment((steady or breach) and view != published_view, breach)


class OrderSweeper:
    """Cancels every live order of ours (the kill switch, a reconciliation breach to HALTED)."""

    def __init__(self, trader: Trader, venue: BinanceVenue) -> None:
        self.trader, self.venue = trader, venue
        self._disputed_canceled: set[str] = set()

    def cancel_all(self, reason: str, quiet: bool = False) -> None:
        """Cancel every live order of ours that can be canceled; ``quiet`` logs nothing when there is none."""
        cancelable = [o for o in self.trader.live.values() if o.can(OrderTrigger.CANCEL_REQUEST)]
        for order in [o for o in self.trader.disputed.values() if not o.can(OrderTrigger.CANCEL_REQUEST)]:
            self._cancel_disputed(order, reason)
        if quiet and not cancelable:
            return
        log.warning("canceling all open orders", extra={"reason": reason, "count": len(cancelable)})
        for order in cancelable:
            try:
                self.trader.request_cancel(order, reason)
            except VenueError as exc:
                log.warning("kill-switch cancel failed; retried next loop",
                            extra={"client_order_id": order.client_order_id, "error": str(exc)})

    def _cancel_disputed(self, order: Order, reason: str) -> None:
        # an order whose venue report the table refused may rest although our state says otherwise:
        # cancel it on the venue directly (no transition); the re-query then reports it canceled
        if order.client_order_id in self._disputed_canceled:
            return
        try:
            self.venue.cancel(order.command.symbol, order.client_order_id)
            log.warning("canceled a disputed order on the venue", extra={"client_order_id": order.client_order_id,
                                                                         "reason": reason})
        except VenueError as exc:
            log.warning("cancel of a disputed order failed", extra={"client_order_id": order.client_order_id,
                                                                     "error": str(exc)})
            return
        self._disputed_canceled.add(order.client_order_id)


class ClockSync:
    """Keeps the trader's estimate of the venue's clock fresh (requests are stamped and settled by it)."""

    def __init__(self, venue: BinanceVenue, trader: Trader, interval_ms: int, clock: Callable[[], int]) -> None:
        self.venue, self.trader, self.interval_ns, self.clock = venue, trader, interval_ms * 1_000_000, clock
        self.next_at = 0

    def sync(self, measured: VenueClock) -> None:
        """Use ``measured`` from now on; measure again after the interval."""
        self.trader.venue_clock = measured
        self.next_at = self.clock() + self.interval_ns
        log.info("venue clock measured", extra={"offset_ms": round(measured.offset_ms, 1),
                                                "uncertainty_ms": round(measured.uncertainty_ms, 1)})

    def resync(self) -> None:
        """Measure the venue's clock again; on failure keep the last measurement and retry soon."""
        try:
            self.sync(self.venue.server_time())
        except VenueError as exc:
            log.warning("venue clock measurement failed; keeping the last one", extra={"error": str(exc)})
            self.next_at = self.clock() + CLOCK_RETRY_NS


class BalanceSupervisor:
    """Periodic reconciliation: balances from fills vs the venue's account, the venue's open orders vs ours."""

    def __init__(
        self, settings: ExecutorSettings, venue: BinanceVenue, baseline: dict[str, Decimal], positions: Positions,
        market: MarketView, trader: Trader, risk: RiskEngine, sweeper: OrderSweeper, events: ExecutorEvents,
        outbox: KafkaOutbox, metrics: ExecutorMetrics, clock: Callable[[], int],
    ) -> None:
        self.settings, self.venue, self.baseline, self.positions, self.market = settings, venue, baseline, positions, market
        self.trader, self.risk, self.sweeper, self.events, self.outbox = trader, risk, sweeper, events, outbox
        self.metrics, self.clock = metrics, clock
        self.next_at = 0
        self.last_check: dict[str, Any] = {}  # the last report, for /health
        self._metrics_assets: set[str] = set()
        self._last_diff: dict[str, Decimal] | None = None
        # (balance differences, differing open orders) of the last check and of the last ExecutorEvent published
        self._last_view: tuple[dict[str, Decimal], OrderView] | None = None
        self._published_view: tuple[dict[str, Decimal], OrderView] = ({}, [])
        self._confirm = False

    def check_soon(self) -> None:
        """Reconcile now and once more shortly after: a view is published once seen twice (a foreign report)."""
        self.next_at = 0
        self._confirm = True

    def due(self, now: int) -> bool:
        """Periodic reconciliation is on and its interval has passed."""
        return bool(self.settings.reconcile_interval_ms) and now >= self.next_at

    def check(self, now: int, runs: Iterable[SignalRun]) -> None:
        """Compare with the venue's account, report differences, act on a breach."""
        self.next_at = now + self.settings.reconcile_interval_ms * 1_000_000
        if self._confirm:
            self._confirm = False
            self.next_at = min(self.next_at, now + CONFIRM_CHECK_NS)
        try:
            balances = self.venue.balances()
            open_orders = self.venue.open_orders()
        except VenueError as exc:
            log.warning("periodic reconciliation failed; next interval", extra={"error": str(exc)})
            return
        answered = self.clock()
        prices = valuation_prices(self.positions.assets, lambda s: self.market.quote(self.settings.venue, s))
        check = balance_check(self.baseline, self.positions.asset_delta, balances, prices)
        foreign, unmanaged = split_open_orders(open_orders, self.trader.live)
        self.last_check = {"diff": {a: str(d) for a, d in check.diff.items()}, "value": str(check.value),
                           "unpriced": list(check.unpriced), "foreign_open_orders": len(foreign),
                           "unmanaged_open_orders": [o["clientOrderId"] for o in unmanaged]}
        for asset in self._metrics_assets | set(check.diff):
            self.metrics.balance_diff.labels(asset).set(float(check.diff.get(asset, 0)))
        self._metrics_assets |= set(check.diff)
        self.metrics.foreign_open_orders.set(len(foreign))
        if check.diff or foreign or unmanaged:
            log.warning("reconciliation: the venue's account differs from the executor's view", extra=self.last_check)
        if unmanaged and self.risk.state is TradingState.HALTED:
            self._cancel_unmanaged(unmanaged)
        view = (check.diff, order_view(foreign, unmanaged))
        verdict = assess(check, view, is_settling(self.trader.live.values(), runs), self._last_diff, self._last_view,
                         self._published_view, self.settings.reconcile_max_diff_quote)
        self._last_diff, self._last_view = check.diff, view
        if verdict.publish:
            self.outbox.executor_event(self.events.reconciliation(
                check, view[1], self.risk.state.value, self.risk.state_reason, answered, self.clock()))
            self._published_view = view
        if verdict.breach:
            self._breach(check, answered)

    def _cancel_unmanaged(self, unmanaged: list[dict[str, Any]]) -> None:
        for order in unmanaged:  # ours but not managed (e.g. left by a crash mid-submit): halted means none rests
            try:
                self.venue.cancel(order["symbol"], order["clientOrderId"])
                log.warning("halted: canceled an unmanaged order of ours", extra={"client_order_id": order["clientOrderId"]})
            except VenueError as exc:
                log.warning("halted: cancel of an unmanaged order failed", extra={"error": str(exc)})

    def _breach(self, check: BalanceCheck, answered: int) -> None:
        target = TradingState(self.settings.reconcile_breach_state)
        previous = self.risk.state
        if state_rank(previous) >= state_rank(target):
            return  # already as strict (REDUCING or HALTED)
        reason = (f"reconciliation: venue balances differ from fills by {check.value} (quote) "
                  f"{ {a: str(d) for a, d in check.diff.items()} }")
        self.risk.set_state(target, reason)
        self.metrics.trading_state.set(state_rank(self.risk.state))
        log.error("trading state changed by reconciliation", extra={"state": target.value, "reason": reason})
        self.outbox.executor_event(self.events.risk_state(previous.value, target.value, reason, answered, answered,
                                                          self.clock()))
        if target is TradingState.HALTED:
            self.sweeper.cancel_all("reconciliation breach")
