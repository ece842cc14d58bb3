"""One backtest: archived market data -> the streams' book pipeline -> signals -> the executor's trader -> matching.

Everything runs in one thread on a simulated clock, in archive order (``backtest.replay``): no Faust, no
Kafka, no wall clock, so the same archive, window, settings and seed give the same records.

Per archived record at receive time ``t``:

1. the streams' :class:`streams.pipelines.book.BookInstrument` of its instrument applies it (``md.book``,
   ``md.health``; BBOs and trades drive no signal and are left out, features and bars are not rewritten);
   a signal is emitted at ``t + tick_to_signal`` and reaches the executor ``signal_to_order`` later;
2. the executor's :class:`executor.market.MarketView` applies it (``md.book``, ``md.bbo``, ``md.health``);
3. every signal run in progress takes one :meth:`executor.trader.Trader.step` (policy, risk, order state
   machine), against :class:`backtest.venue.BacktestVenue`, whose engine has read the archive up to
   the order's arrival at the venue (``venue_one_way`` after the call) and whose answer moves the
   executor's clock one more leg (the REST call blocks).

The read starts at each instrument's last ``md.book`` snapshot before the window (the earliest of them), so
the books are whole at its start, and the model sees those updates too; signals of that warm-up are dropped.
A signal arriving stale (``executor.intake.stale_reason``) is dropped as the live executor drops it.
After the last record the runs keep stepping on the clock (``poll_interval`` apart) until each is done:
their resting orders expire with their signals, nothing fills them any more.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from backtest.latency import LatencyModel, calibrate
from backtest.replay import ArchiveReplay, Event
from backtest.results import ResultWriter
from backtest.venue import BacktestVenue, MatchingEngine, Tape
from executor.commands import Side
from executor.intake import stale_reason
from executor.market import MarketView
from executor.order import InvalidStateTrigger
from executor.policy import InstrumentRules
from executor.positions import Positions
from executor.startup import risk_engine, trader_config
from executor.trader import SignalRun, Trader
from executor.venue import VenueError
from infra.settings import Settings
from schemas.topics import Topic
from sinks.migrate import migrate
from streams.models.base import InputRef
from streams.pipelines.book import BookInstrument, book_config

MS = 1_000_000
DRAIN_LIMIT_NS = 3_600 * 1_000_000_000  # after the archive ends, runs get at most this long to finish


@dataclass(frozen=True)
class Instrument:
    """An instrument's trading facts from the archive (``instruments`` view)."""

    base: str
    quote: str
    rules: InstrumentRules


def archived_instruments(client: Client, venue: str) -> dict[str, Instrument]:
    """``symbol -> Instrument`` of ``venue`` from the feed's reference data (``md.instruments``).

    The archive keeps tick and lot size; the minimum quantity is one lot and no minimum notional applies.
    """
    rows = client.query(
        "SELECT symbol, base, quote, toString(tick_size), toString(lot_size) FROM instruments WHERE venue = {v:String}",
        parameters={"v": venue}).result_rows
    return {symbol: Instrument(base, quote, InstrumentRules(Decimal(tick), Decimal(lot), Decimal(lot), Decimal(0)))
            for symbol, base, quote, tick, lot in rows}


@dataclass
class Summary:
    """What a run did, for the command's report."""

    backtest_id: str
    events: int = 0
    warmup_events: int = 0  # read before the window to rebuild the books (from their last snapshot)
    signals: int = 0
    stale_signals: int = 0
    orders: int = 0
    fills: int = 0
    positions: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # symbol -> (qty, realized pnl)
    wall_s: float = 0.0
    archive_s: float = 0.0

    @property
    def events_per_s(self) -> float:
        """Archived records replayed per wall-clock second."""
        return self.events / self.wall_s if self.wall_s else 0.0


class _Outbox:
    # the trader's outbox: order events and fills to the result writer
    def __init__(self, results: ResultWriter) -> None:
        self.results = results

    def order_event(self, record: dict[str, Any]) -> None:
        self.results.add(Topic.ORDERS.value, record)

    def fill(self, record: dict[str, Any]) -> None:
        self.results.add(Topic.FILLS.value, record)


class Backtest:
    """One run over ``[start_ns, end_ns)`` of the archive; :meth:`run` returns its :class:`Summary`."""

    def __init__(self, client: Client, settings: Settings, backtest_id: str, start_ns: int, end_ns: int,
                 symbols: list[str], model: str, latency: LatencyModel,
                 progress: Callable[[Summary, int], None] = lambda summary, at_ns: None) -> None:
        s = settings
        self.venue = s.executor.venue
        instruments = archived_instruments(client, self.venue)
        symbols = symbols or sorted(instruments)
        unknown = [x for x in symbols if x not in instruments]
        if unknown:
            raise ValueError(f"no reference data (md.instruments) in the archive for {self.venue}: {unknown}")
        self.instruments = {x: instruments[x] for x in symbols}
        keys, chunk_ns = [f"{self.venue}:{x}" for x in symbols], s.backtest.chunk_s * 1_000_000_000
        self.start_ns = start_ns
        warm = ArchiveReplay(client, start_ns, end_ns, keys, chunk_ns).warm_start()
        self.replay = ArchiveReplay(client, warm, end_ns, keys, chunk_ns)
        self.latency = latency
        self.progress = progress
        self.summary = Summary(backtest_id)
        self.results = ResultWriter(client, backtest_id, s.backtest.flush_rows)
        self.book_cfg = book_config(s.streams, model)
        self.books: dict[tuple[str, str], BookInstrument] = {}
        self.now = warm
        self.max_signal_age_ms = s.executor.max_signal_age_ms
        self.engine = MatchingEngine(s.backtest.depth_levels, Decimal(s.backtest.maker_fee),
                                     Decimal(s.backtest.taker_fee),
                                     lambda symbol: (self.instruments[symbol].base, self.instruments[symbol].quote))
        venue = BacktestVenue(self.engine, lambda: self.now, lambda: latency.draw("venue_one_way"), self._busy)
        self.market = MarketView(s.executor.depth_levels)
        rate_limits = [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                        "limit": s.backtest.orders_per_10s},
                       {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
                        "limit": s.backtest.orders_per_day}]
        self.positions = Positions({x: (i.base, i.quote) for x, i in self.instruments.items()})
        self.trader = Trader(trader_config(s.executor), venue, risk_engine(s.executor, rate_limits, lambda: self.now),
                             self.market, self.positions, {x: i.rules for x, i in self.instruments.items()},
                             _Outbox(self.results), lambda: self.now)
        self.arrivals: list[tuple[int, int, dict[str, Any]]] = []  # (at the executor, seq, signal)
        self.runs: list[SignalRun] = []
        self._signal_offset = 0

    def _busy(self, until_ns: int) -> None:
        self.now = max(self.now, until_ns)

    def run(self) -> Summary:
        """Replay the window, drain the runs, write the results; return the summary."""
        started = time.perf_counter()
        tape = Tape(iter(self.replay), self.engine)
        for event in tape:
            self._at(event.ts)
            self._market(event)
            self.summary.events += 1
            self.summary.warmup_events += event.ts < self.start_ns
            if self.summary.events % 10_000 == 0:
                self.progress(self.summary, event.ts)
        end = self.now + DRAIN_LIMIT_NS
        while (self.arrivals or self.runs) and self.now < end:
            self._at(self.now + self.trader.config.poll_interval_ns)
        self.results.flush()
        self.summary.orders = self.results.counts[Topic.ORDERS.value]
        self.summary.fills = self.results.counts[Topic.FILLS.value]
        self.summary.positions = {x: (self.positions.get(x).qty, self.positions.get(x).realized_pnl)
                                  for x in self.positions.symbols()}
        self.summary.wall_s = time.perf_counter() - started
        self.summary.archive_s = (self.replay.end_ns - self.replay.start_ns) / 1e9
        return self.summary

    def _at(self, ts: int) -> None:
        # signals reaching the executor by ts start their runs there; then every run steps at ts
        while self.arrivals and self.arrivals[0][0] <= ts:
            at, _, signal = heapq.heappop(self.arrivals)
            self.now = max(self.now, at)
            self._take(signal)
            self._step()
        self.now = max(self.now, ts)
        self._step()

    def _market(self, event: Event) -> None:
        record = event.record
        if event.topic == "md.book":
            self.market.on_book(record)
            self._book(event)
        elif event.topic == "md.bbo":
            self.market.on_bbo(record)
        elif event.topic == "md.health":
            self.market.on_health(record)
            if record["symbol"]:  # a connection-level event changes no book (as in the streams' agent)
                self._instrument(record).on_health(record)

    def _instrument(self, record: dict[str, Any]) -> BookInstrument:
        key = (record["venue"], record["symbol"])
        if key not in self.books:
            self.books[key] = BookInstrument()
        return self.books[key]

    def _book(self, event: Event) -> None:
        out = self._instrument(event.record).on_delta(event.record, InputRef(event.topic, event.partition,
                                                                               event.offset), self.book_cfg)
        if out.signal is None or event.ts < self.start_ns:
            return  # before the window the model only warms up: its signals are not the window's
        signal = out.signal
        signal["ts_emit"] = event.ts + self.latency.draw("tick_to_signal")
        signal["ts_md_ack"] = signal["ts_in"] = None
        self.results.add(Topic.SIGNALS.value, signal)
        self.summary.signals += 1
        arrive = signal["ts_emit"] + self.latency.draw("signal_to_order")
        heapq.heappush(self.arrivals, (arrive, self.summary.signals, signal))

    def _take(self, signal: dict[str, Any]) -> None:
        if signal["venue"] != self.venue or signal["symbol"] not in self.instruments:
            return
        if stale_reason(signal, self.now, self.max_signal_age_ms) is not None:
            self.summary.stale_signals += 1
            return
        run = SignalRun(signal, 0, self._signal_offset, self.now, Side(signal["side"]), Decimal(signal["target"]))
        self._signal_offset += 1
        run.started = True
        self.runs.append(run)

    def _step(self) -> None:
        for run in self.runs:
            try:
                self.trader.step(run)
            except (VenueError, InvalidStateTrigger):
                run.next_action_at = self.now + 1_000_000_000  # kept and retried, as the live engine does
        if any(run.done for run in self.runs):
            self.runs = [run for run in self.runs if not run.done]


def run_backtest(client: Client, settings: Settings, backtest_id: str, start_ns: int, end_ns: int,
                 symbols: list[str], model: str, seed: int,
                 progress: Callable[[Summary, int], None] = lambda summary, at_ns: None) -> tuple[Summary, LatencyModel]:
    """Bring the archive's tables up to the schemas, calibrate the latency, run; return the summary and the model."""
    migrate(client, client.database)
    b = settings.backtest
    hops = calibrate(client, {"tick_to_signal": b.tick_to_signal_us * 1000, "signal_to_order": b.signal_to_order_us * 1000,
                              "venue_one_way": b.venue_round_trip_us * 1000 // 2})
    latency = LatencyModel(hops, seed)
    return Backtest(client, settings, backtest_id, start_ns, end_ns, symbols, model, latency, progress).run(), latency
