"""The venue-neutral feed core: raw inputs from N connections in, normalized records out.

One thread owns a :class:`FeedPipeline`; live sessions, the snapshot fetcher and playback all feed
it the same inputs (``open``, ``frame``, ``snapshot``, ``close``, ``tick``), so live and playback
run the same parser, merge and book code. It performs no I/O: records go to ``sink``, and what it
needs from the outside world (a REST snapshot, a page of trade history to fill a trade gap,
replacing a stalled connection, rolling a connection over) it asks through callbacks.

Every live book is also published whole on ``md.book.snapshots`` (compacted, one record per
instrument kept), right after each (re)sync and then every ``snapshot_interval_ns`` of receive time
when it changed, as a BookDelta with ``snapshot`` true at the update id of the last delta published:
a consumer that joins mid-stream starts from it instead of waiting for the next resync.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.backoff import backoff_delay
from orderbook import OrderBook
from producers import book_sync as bs
from producers.dead_letters import dead_letter
from producers.errors import ParseError
from producers.health import FeedEventKind, FeedEvents
from producers.metrics import FeedMetrics, slot_of
from producers.redundancy import MonotonicFilter, SequenceMerger, StallDetector
from producers.stream_books import Broken, Publish, StreamBooks
from producers.venue import BookMessage, BookSource, Channel, Diff, VenueAdapter
from schemas.topics import BOOK_SNAPSHOTS, Topic, instrument_key

log = logging.getLogger(__name__)

RecordSink = Callable[[str, bytes, str, dict[str, Any]], None]
"""``sink(topic, key, record_name, record)``."""

_NS_PER_S = 1e9
# Enum members bound once: ``Channel.TRADE`` / ``Topic.TRADES`` cost ~0.1 us per lookup on
# Python 3.11 (the class's member descriptor), several times per frame on the hot path.
_TRADE, _DEPTH, _SHUTDOWN, _CONTROL = Channel.TRADE, Channel.DEPTH, Channel.SHUTDOWN, Channel.CONTROL
_BOOKMSG, _BATCH, _INSTRUMENT = Channel.BOOK, Channel.BATCH, Channel.INSTRUMENT
_TRADES, _BOOK, _BBO = Topic.TRADES, Topic.BOOK, Topic.BBO


def _levels(levels: list[list[str]]) -> list[dict[str, str]]:
    return [{"price": p, "qty": q} for p, q in levels]


def _trade_span(trade: dict[str, Any]) -> tuple[int, int]:
    return trade["trade_id"], trade["trade_id"]


def _trade_follows(prev: int, trade: dict[str, Any]) -> bool:
    return trade["trade_id"] == prev + 1


def _diff_span(diff: Diff) -> tuple[int, int]:
    return diff.first_id, diff.last_id


@dataclass
class _Instrument:
    symbol: str
    key: bytes
    trades: SequenceMerger[dict[str, Any]]
    diffs: SequenceMerger[Diff]
    bbo: MonotonicFilter
    sync: bs.BookSync
    last_trade_id: int | None = None
    missing_trades: list[list[int]] = field(default_factory=list)
    """Trade id ranges awaiting backfill from the venue's REST history: ``[next id, last id, first id]``."""
    trades_wanted: bool = False
    resumed: bool = False
    """``last_trade_id`` came from an earlier run and no live trade has confirmed it yet."""
    snapshot_wanted: bool = False
    synced_once: bool = False
    snapshot_refusals: int = 0
    """Snapshot requests the venue refused as not retriable since the book was last true."""
    snapshot_retry_at: int | None = None
    unsynced_since: int | None = None
    buffer_gauge: Any = None
    stream: StreamBooks | None = None
    """Per-connection websocket books (venues whose book is not a REST snapshot plus id-chained diffs)."""
    definition: tuple[str, str, str, str] | None = None
    """(base, quote, tick, lot) last published on md.instruments."""
    snapshot_due: int | None = None
    """Receive time after which the live book is published on md.book.snapshots again (None: not live yet)."""
    snapshot_id: int | None = None
    """Update id of the book last published on md.book.snapshots."""


@dataclass
class Callbacks:
    """What the pipeline asks of its environment (live: sessions and REST; playback: nothing)."""

    request_snapshot: Callable[[str], None] = lambda symbol: None
    replace_connection: Callable[[str], None] = lambda connection_id: None
    rollover_connection: Callable[[str], None] = lambda connection_id: None
    request_trades: Callable[[str, int], None] = lambda symbol, from_id: None


class FeedPipeline:
    """Parse, merge, sync and normalize one venue's streams for a set of symbols."""

    def __init__(
        self,
        adapter: VenueAdapter,
        symbols: list[str],
        sink: RecordSink,
        events: FeedEvents,
        metrics: FeedMetrics,
        *,
        callbacks: Callbacks | None = None,
        hold_ns: int = 500_000_000,
        stall_timeout_ns: int = 2_000_000_000,
        silence_timeout_ns: int | None = None,
        max_book_buffer: int = 100_000,
        max_backfill_trades: int = 100_000,
        refused_pause_ns: int = 30_000_000_000,
        refused_max_pause_ns: int = 300_000_000_000,
        rand: Callable[[], float] = random.random,
        learn_symbols: bool = False,
        snapshot_interval_ns: int = 0,
    ) -> None:
        self.adapter = adapter
        self._stream_books = adapter.book_source is BookSource.STREAM
        self._can_backfill = adapter.trades_url("", "", 0) is not None
        self._learn_symbols = learn_symbols
        self._sequences: dict[str, int] = {}
        self._retired: set[str] = set()
        """Connections being replaced: their websocket books are gone and their book messages ignored until they close."""
        self.venue = adapter.venue
        self._sink = sink
        self._events = events
        self._metrics = metrics
        self._cb = callbacks or Callbacks()
        self._stalls = StallDetector(stall_timeout_ns, silence_timeout_ns)
        self._urls: dict[str, str] = {}
        self._hold_ns = hold_ns
        self._max_book_buffer = max_book_buffer
        self._max_backfill = max_backfill_trades
        self._refused_pause_s = refused_pause_ns / 1e9
        self._refused_max_pause_s = refused_max_pause_ns / 1e9
        self._rand = rand
        self._snapshot_interval = snapshot_interval_ns
        self._instruments: dict[str, _Instrument] = {}
        self.add_symbols(symbols)
        self.dead_letters = 0

    def add_symbols(self, symbols: list[str]) -> None:
        """Serve ``symbols`` too (playback learns them from the recorded stream URLs)."""
        for symbol in symbols:
            if symbol not in self._instruments:
                self._add(symbol)

    def _add(self, symbol: str) -> None:
        rule = self.adapter.sync_rule
        self._instruments[symbol] = _Instrument(
            symbol, instrument_key(self.venue, symbol),
            SequenceMerger(_trade_span, _trade_follows, self._hold_ns),
            SequenceMerger(_diff_span, rule.follows, self._hold_ns),
            MonotonicFilter(),
            bs.BookSync(rule, self._max_book_buffer),
            buffer_gauge=self._metrics.book_buffer.labels(symbol),
            stream=StreamBooks(self.adapter.book_depth, self.adapter.book_intact) if self._stream_books else None,
        )

    # --- inputs ---------------------------------------------------------------------------

    def open(self, connection_id: str, url: str, now: int) -> None:
        """A connection opened (or reopened) on ``url``."""
        self._urls[connection_id] = url
        self._stalls.opened(connection_id, now)
        self._sequences.pop(connection_id, None)
        for inst in self._instruments.values():
            if inst.unsynced_since is None and not self._live(inst):
                inst.unsynced_since = now
        self._metrics.connects.labels(slot_of(connection_id)).inc()
        self._health(FeedEventKind.CONNECT, now, connection_id=connection_id, detail=url)

    def close(self, connection_id: str, reason: str, now: int) -> None:
        """A connection closed."""
        self._stalls.closed(connection_id)
        self._sequences.pop(connection_id, None)
        self._health(FeedEventKind.DISCONNECT, now, connection_id=connection_id, detail=reason)
        self._drop_books(connection_id, now, f"connection {connection_id} closed")
        self._retired.discard(connection_id)

    def rollover(self, connection_id: str, detail: str, now: int) -> None:
        """A connection is being rolled over (a replacement opens before it closes)."""
        self._health(FeedEventKind.ROLLOVER, now, connection_id=connection_id, detail=detail)

    def frame(self, connection_id: str, data: str | bytes, now: int) -> None:
        """Process one websocket frame received at ``now`` on ``connection_id``."""
        self._stalls.frame(connection_id, now)
        try:
            channel, payload = self.adapter.parse_frame(data, now)
        except ParseError as exc:
            self._dead_letter(connection_id, data, exc.reason, now)
            return
        if channel is _CONTROL:
            return
        if channel is _BATCH:
            if payload.sequence is not None and not self._in_sequence(connection_id, payload.sequence, now):
                return
            for item_channel, item in payload.items:
                self._route(connection_id, data, item_channel, item, now)
            return
        self._route(connection_id, data, channel, payload, now)

    def _route(self, connection_id: str, data: str | bytes, channel: Channel, payload: Any, now: int) -> None:
        if channel is _CONTROL:
            return
        if channel is _INSTRUMENT:
            self._publish_instrument(payload)
            return
        if channel is _SHUTDOWN:
            self._health(FeedEventKind.OTHER, now, connection_id=connection_id, detail="serverShutdown notice")
            self._cb.rollover_connection(connection_id)
            return
        symbol = payload.symbol if channel is _DEPTH or channel is _BOOKMSG else payload["symbol"]
        inst = self._instruments.get(symbol)
        if inst is None:
            if not self._learn_symbols:
                self._dead_letter(connection_id, data, f"unknown symbol {symbol!r}", now, symbol)
                return
            self._add(symbol)
            inst = self._instruments[symbol]
        if channel is _BOOKMSG:
            self._metrics.frame(connection_id, symbol, (now - payload.ts_event) / _NS_PER_S)
            self._stream_book(inst, connection_id, payload, now)
        elif channel is _DEPTH:
            self._metrics.frame(connection_id, symbol, (now - payload.ts_event) / _NS_PER_S)
            for diff in inst.diffs.offer(payload, now):
                self._apply_diff(inst, diff, now)
        elif channel is _TRADE:
            self._metrics.frame(connection_id, symbol, (now - payload["ts_event"]) / _NS_PER_S)
            for trade in inst.trades.offer(payload, now):
                self._publish_trade(inst, trade, now)
        else:
            self._metrics.frame(connection_id, symbol, None)
            if inst.bbo.accept(payload["update_id"]):
                self._sink(_BBO, inst.key, "BBO", payload)

    def rest(self, url: str, body: str | bytes, now: int) -> None:
        """Process a REST answer received at ``now``: reference data, historical trades or a depth snapshot, by its URL."""
        if self.adapter.is_instrument_url(url):
            self.instrument(url, body, now)
        elif self.adapter.is_trades_url(url):
            self.trades(url, body, now)
        else:
            self.snapshot(url, body, now)

    def instrument(self, url: str, body: str | bytes, now: int) -> None:
        """Process a REST reference-data answer: publish the instrument's definition on md.instruments."""
        inst = self._rest_instrument(url, body, now, "reference data")
        if inst is None:
            return
        try:
            record = self.adapter.parse_instrument(body, inst.symbol, now)
        except ParseError as exc:
            self._dead_letter("rest", body, exc.reason, now, inst.symbol, source=url)
            return
        self._publish_instrument(record)

    def instrument_failed(self, symbol: str, reason: str, retriable: bool, now: int) -> None:
        """A reference-data fetch failed: reported (the market data does not wait for it)."""
        self._health(FeedEventKind.OTHER, now, symbol=symbol,
                     detail=f"reference data fetch failed ({'retriable' if retriable else 'not retriable'}): {reason}")

    def _publish_instrument(self, record: dict[str, Any]) -> None:
        # the venue lists every instrument it has (Kraken: all pairs): only the configured ones are published,
        # and each only when its definition changed
        inst = self._instruments.get(record["symbol"])
        if inst is None:
            return
        definition = (record["base"], record["quote"], record["tick_size"], record["lot_size"])
        if definition != inst.definition:
            inst.definition = definition
            self._sink(Topic.INSTRUMENTS, inst.key, "Instrument", record)

    def resume_trades(self, symbol: str, last_trade_id: int) -> None:
        """Continue after ``last_trade_id``, the last trade an earlier run published (a restart backfills the rest)."""
        inst = self._instruments[symbol]
        if inst.last_trade_id is None:
            inst.last_trade_id = last_trade_id
            inst.resumed = True

    def trades(self, url: str, body: str | bytes, now: int) -> None:
        """Process a page of the venue's trade history: publish the trades of the ranges missing on every connection."""
        inst = self._rest_instrument(url, body, now, "trades")
        if inst is None:
            return
        symbol = inst.symbol
        inst.trades_wanted = False
        try:
            page = self.adapter.parse_trades(body, symbol, now)
        except ParseError as exc:
            self._dead_letter("rest", body, exc.reason, now, symbol, source=url)
            self._want_trades(inst)
            return
        if not inst.missing_trades:
            return
        head = inst.missing_trades[0][0]
        for trade in page:
            tid = trade["trade_id"]
            span = next((r for r in inst.missing_trades if r[0] <= tid <= r[1]), None)
            if span is not None:
                span[0] = tid + 1
                self._sink(Topic.TRADES, inst.key, "Trade", trade)
        for _, last, first in [r for r in inst.missing_trades if r[0] > r[1]]:
            self._health(
                FeedEventKind.RECOVERED, now, symbol=symbol, first_update_id=first, last_update_id=last,
                count=last - first + 1, detail=f"trades {first}..{last} backfilled from the venue's trade history",
            )
        inst.missing_trades = [r for r in inst.missing_trades if r[0] <= r[1]]
        if inst.missing_trades and inst.missing_trades[0][0] == head:
            nxt, last, _ = inst.missing_trades.pop(0)
            self._health(FeedEventKind.OTHER, now, symbol=symbol, first_update_id=nxt, last_update_id=last,
                         count=last - nxt + 1, detail=f"trades {nxt}..{last} not in the venue's trade history; lost")
        self._want_trades(inst)

    def trades_failed(self, symbol: str, reason: str, retriable: bool, now: int) -> None:
        """A trade history fetch for ``symbol`` failed; ask again unless no retry can help."""
        inst = self._instruments[symbol]
        inst.trades_wanted = False
        self._health(FeedEventKind.OTHER, now, symbol=symbol,
                     detail=f"trade backfill failed ({'will retry' if retriable else 'not retriable; lost'}): {reason}")
        if retriable:
            self._want_trades(inst)
        else:
            inst.missing_trades.clear()

    def snapshot(self, url: str, body: str | bytes, now: int) -> None:
        """Process a REST depth snapshot body received at ``now``."""
        inst = self._rest_instrument(url, body, now, "snapshot")
        if inst is None:
            return
        symbol = inst.symbol
        inst.snapshot_wanted = False
        try:
            snap = self.adapter.parse_snapshot(body, symbol, now)
        except ParseError as exc:
            self._dead_letter("rest", body, exc.reason, now, symbol, source=url)
            self._want_snapshot(inst)
            return
        self._on_sync_result(inst, inst.sync.apply_snapshot(snap), now)

    def _rest_instrument(self, url: str, body: str | bytes, now: int, what: str) -> _Instrument | None:
        """Return the instrument a REST answer is for; None, dead-lettered, when its URL names no configured one."""
        try:
            symbol = self.adapter.snapshot_symbol(url)
        except ValueError as exc:
            self._dead_letter("rest", body, f"{what} url without symbol: {exc}", now, source=url)
            return None
        inst = self._instruments.get(symbol)
        if inst is None:
            self._dead_letter("rest", body, f"{what} of unknown symbol {symbol!r}", now, symbol, source=url)
        return inst

    def snapshot_failed(self, symbol: str, reason: str, retriable: bool, now: int) -> None:
        """The snapshot fetch for ``symbol`` failed: ask again, at once if retriable, else after a pause.

        A refusal the venue calls final (403, a banned IP, ...) often is not (a WAF rule, a ban that
        expires): the book would stay stuck for good, so it is asked again after ``refused_pause``,
        doubling per refusal up to ``refused_max_pause`` (equal jitter), until a snapshot syncs it.
        """
        inst = self._instruments[symbol]
        inst.snapshot_wanted = False
        if retriable:
            self._health(FeedEventKind.OTHER, now, symbol=symbol, detail=f"snapshot fetch failed (will retry): {reason}")
            self._want_snapshot(inst)
            return
        pause_s = backoff_delay(inst.snapshot_refusals, self._refused_pause_s, self._refused_max_pause_s, self._rand)
        inst.snapshot_refusals += 1
        inst.snapshot_retry_at = now + int(pause_s * 1e9)
        self._health(FeedEventKind.OTHER, now, symbol=symbol, count=inst.snapshot_refusals,
                     detail=f"snapshot fetch failed (not retriable; refusal {inst.snapshot_refusals}, "
                            f"asking again in {pause_s:.1f} s): {reason}")

    def tick(self, now: int) -> None:
        """Release held events whose peers did not deliver in time; replace stalled connections; retry refused snapshots."""
        for inst in self._instruments.values():
            if inst.snapshot_due is not None and now >= inst.snapshot_due and self._live(inst):
                self._publish_book_snapshot(inst, now)
            if inst.snapshot_retry_at is not None and now >= inst.snapshot_retry_at:
                inst.snapshot_retry_at = None
                self._want_snapshot(inst)
            if inst.trades.held:
                for trade in inst.trades.expire(now):
                    self._publish_trade(inst, trade, now)
            if inst.diffs.held:
                for diff in inst.diffs.expire(now):
                    self._apply_diff(inst, diff, now)
            inst.buffer_gauge.set(inst.sync.buffered)
            for stream, merger in (("trade", inst.trades), ("depth", inst.diffs)):
                if merger.duplicates:
                    self._metrics.duplicates.labels(inst.symbol, stream).inc(merger.duplicates)
                    merger.duplicates = 0
            if inst.bbo.duplicates:
                self._metrics.duplicates.labels(inst.symbol, "bbo").inc(inst.bbo.duplicates)
                inst.bbo.duplicates = 0
        for conn in self._stalls.stalled(now):
            self._stalls.closed(conn)
            self._health(FeedEventKind.STALLED, now, connection_id=str(conn), detail="silent (while peers receive, or all for too long); replacing")
            # its books are not kept until the socket thread reports the close (that can take seconds)
            self._retire(str(conn), now, f"connection {conn} stalled")

    def internal_error(self, connection_id: str, data: str | bytes, error: Exception, now: int) -> None:
        """An input broke the pipeline itself (a bug): keep it in dlq with the error, and go on."""
        self._dead_letter(connection_id, data, f"internal error: {type(error).__name__}: {error}", now)

    # --- views ----------------------------------------------------------------------------

    def book(self, symbol: str) -> bs.BookSync:
        """Return the sync state (and book) of ``symbol`` (REST_SNAPSHOT venues)."""
        return self._instruments[symbol].sync

    def published_book(self, symbol: str) -> OrderBook | None:
        """Return the book the published records of ``symbol`` add up to (a websocket book: None while none is true)."""
        inst = self._instruments[symbol]
        return inst.stream.published if inst.stream is not None else inst.sync.book

    @property
    def symbols(self) -> list[str]:
        """Return the symbols this pipeline serves."""
        return list(self._instruments)

    def unsynced_s(self, now: int) -> dict[str, float]:
        """Seconds each symbol whose book is not true has been so (symbols with a true book are absent)."""
        return {s: round((now - i.unsynced_since) / 1e9, 3) for s, i in self._instruments.items()
                if i.unsynced_since is not None}

    def status(self) -> dict[str, Any]:
        """Return a JSON-able health summary per symbol."""
        return {
            s: {
                "book": "live" if self._live(i) else "syncing",
                "last_update_id": i.stream.last_id if i.stream is not None else i.sync.book.last_update_id,
                "last_trade_id": i.last_trade_id,
                "buffered_diffs": i.sync.buffered,
                "synced_once": i.synced_once,
                "snapshot_refusals": i.snapshot_refusals,
            }
            for s, i in self._instruments.items()
        }

    # --- internals ------------------------------------------------------------------------

    @staticmethod
    def _live(inst: _Instrument) -> bool:
        if inst.stream is not None:
            return inst.stream.leader is not None
        return inst.sync.state is bs.SyncState.LIVE

    def _in_sequence(self, connection_id: str, sequence: int, now: int) -> bool:
        """Check a connection's frame number; on a gap, drop its books and resubscribe it (a new connection)."""
        prev = self._sequences.get(connection_id)
        self._sequences[connection_id] = sequence
        if prev is None or sequence == prev + 1:
            return True
        if sequence <= prev:
            return True  # a repeated frame: its contents are deduplicated like any other copy
        self._metrics.gaps.labels("", "sequence").inc()
        self._health(FeedEventKind.GAP, now, connection_id=connection_id, first_update_id=prev + 1,
                     last_update_id=sequence - 1, count=sequence - prev - 1,
                     detail=f"frames {prev + 1}..{sequence - 1} missing on connection {connection_id}; resubscribing")
        self._sequences.pop(connection_id, None)
        self._stalls.closed(connection_id)
        self._retire(connection_id, now, f"sequence gap on connection {connection_id}")
        return False

    def _retire(self, connection_id: str, now: int, why: str) -> None:
        """Replace a connection: its websocket books go at once, not when the socket thread reports the close.

        A replaced connection is no longer read, so a book it kept would freeze while still looking
        intact, and could later take over the published book (seen: a Kraken connection replaced for
        one pair's checksum kept its other pair's book, which took over at the next close).
        """
        if self._stream_books:
            self._retired.add(connection_id)
        self._drop_books(connection_id, now, why)
        self._cb.replace_connection(connection_id)

    def _drop_books(self, connection_id: str, now: int, why: str) -> None:
        """Forget a connection's websocket books (closed, stalled or out of sequence); another takes over."""
        if not self._stream_books:
            return
        for inst in self._instruments.values():
            assert inst.stream is not None
            dropped = inst.stream.drop(connection_id, now)
            if dropped is not None:
                self._stream_broken(inst, dropped, now, why)

    def _stream_book(self, inst: _Instrument, connection_id: str, message: BookMessage, now: int) -> None:
        assert inst.stream is not None
        if connection_id in self._retired:
            return
        result = inst.stream.apply(connection_id, message)
        if result is None:
            return
        if type(result) is Publish:
            self._publish_stream(inst, result, message.ts_event, now)
            return
        assert type(result) is Broken
        sym = inst.symbol
        self._metrics.gaps.labels(sym, "book").inc()
        # only the published (leader's) book going wrong is the instrument's gap; another connection's
        # is a connection-level event (consumers keep the instrument live), its detail names the symbol
        self._health(FeedEventKind.GAP, now, symbol=sym if result.was_leader else "", connection_id=connection_id,
                     detail=f"{sym} book on connection {connection_id} fails the venue's check (checksum "
                            f"{message.checksum}); resubscribing")
        self._stream_broken(inst, result, now, f"book check failed on connection {connection_id}")
        self._stalls.closed(connection_id)
        self._retire(connection_id, now, f"connection {connection_id} replaced after {sym}'s book check failed")

    def _stream_broken(self, inst: _Instrument, broken: Broken, now: int, why: str) -> None:
        sym = inst.symbol
        if broken.took_over is not None:
            self._publish_stream(inst, broken.took_over, now, now)
            self._health(FeedEventKind.RECOVERED, now, symbol=sym, connection_id=broken.took_over.connection_id,
                         last_update_id=broken.took_over.last,
                         detail=f"{why}: book continued from connection {broken.took_over.connection_id}")
        elif broken.was_leader:
            self._metrics.resyncs.labels(sym).inc()
            self._health(FeedEventKind.STALE, now, symbol=sym, last_update_id=inst.stream.last_id if inst.stream else None,
                         detail=f"{why}: no other intact book; stale until a connection's snapshot")
            inst.unsynced_since = inst.unsynced_since if inst.unsynced_since is not None else now

    def _publish_stream(self, inst: _Instrument, pub: Publish, ts_event: int, now: int) -> None:
        self._sink(_BOOK, inst.key, "BookDelta", {
            "venue": self.venue, "symbol": inst.symbol, "snapshot": pub.snapshot,
            "first_update_id": pub.first, "last_update_id": pub.last,
            "bids": _levels(pub.bids), "asks": _levels(pub.asks),
            "ts_event": ts_event, "ts_recv": now,
        })
        if pub.snapshot:
            self._publish_book_snapshot(inst, now)
            first = not inst.synced_once
            inst.synced_once = True
            if inst.unsynced_since is not None or first:
                inst.unsynced_since = None
                self._health(FeedEventKind.RECOVERED, now, symbol=inst.symbol, connection_id=pub.connection_id,
                             last_update_id=pub.last, detail=f"book true from connection {pub.connection_id}'s snapshot")

    def _publish_book_snapshot(self, inst: _Instrument, now: int) -> None:
        # the live book whole at the update id of the last delta published; skipped while it has not changed
        # since the last one (a consumer then needs no delta after it, so its age does not matter)
        if not self._snapshot_interval:
            return
        inst.snapshot_due = now + self._snapshot_interval
        if inst.stream is not None:
            book, update_id = inst.stream.published, inst.stream.last_id
        else:
            book, update_id = inst.sync.book, inst.sync.book.last_update_id
        if book is None or update_id == inst.snapshot_id:
            return
        inst.snapshot_id = update_id
        bids, asks = book.top()
        self._sink(BOOK_SNAPSHOTS, inst.key, "BookDelta", {
            "venue": self.venue, "symbol": inst.symbol, "snapshot": True,
            "first_update_id": update_id, "last_update_id": update_id,
            "bids": _levels(bids), "asks": _levels(asks), "ts_event": now, "ts_recv": now,
        })

    def _publish_trade(self, inst: _Instrument, trade: dict[str, Any], now: int) -> None:
        tid = trade["trade_id"]
        last = inst.last_trade_id
        if inst.resumed:
            inst.resumed = False
            if last is not None and tid <= last:
                # ids went back: not the venue history the earlier run saw (a reset test venue)
                self._health(FeedEventKind.OTHER, now, symbol=inst.symbol, last_update_id=last, first_update_id=tid,
                             detail=f"first live trade {tid} is not after {last}, the last one published before the "
                             "restart: venue trade ids were reset; not resuming")
                last = inst.last_trade_id = None
        if last is not None and tid <= last:
            inst.trades.duplicates += 1
            return
        if last is not None and tid != last + 1:
            self._metrics.gaps.labels(inst.symbol, "trade").inc()
            self._health(
                FeedEventKind.GAP, now, symbol=inst.symbol, first_update_id=last + 1, last_update_id=tid - 1,
                count=tid - last - 1, detail=f"trades {last + 1}..{tid - 1} missing on every connection; backfilling",
            )
            self._backfill(inst, last + 1, tid - 1, now)
        inst.last_trade_id = tid
        self._sink(_TRADES, inst.key, "Trade", trade)

    def _apply_diff(self, inst: _Instrument, diff: Diff, now: int) -> None:
        result = inst.sync.apply_diff(diff)
        if type(result) is bs.Applied:
            self._sink(_BOOK, inst.key, "BookDelta", {
                "venue": self.venue, "symbol": inst.symbol, "snapshot": False,
                "first_update_id": diff.first_id, "last_update_id": diff.last_id,
                "bids": _levels(diff.bids), "asks": _levels(diff.asks),
                "ts_event": diff.ts_event, "ts_recv": diff.ts_recv,
            })
        else:
            self._on_sync_result(inst, result, now)

    def _on_sync_result(self, inst: _Instrument, result: bs.SyncResult, now: int) -> None:
        kind = type(result)
        sym = inst.symbol
        if kind is bs.Buffered:
            if not inst.snapshot_wanted and not inst.synced_once and inst.snapshot_retry_at is None:
                inst.unsynced_since = inst.unsynced_since if inst.unsynced_since is not None else now
                self._health(FeedEventKind.RESYNC, now, symbol=sym, detail="initial sync: fetching snapshot")
                self._metrics.resyncs.labels(sym).inc()
                self._want_snapshot(inst)
        elif kind is bs.Synced:
            self._publish_synced(inst, result, now)  # type: ignore[arg-type]
        elif kind is bs.Gap:
            self._metrics.gaps.labels(sym, "depth").inc()
            self._health(
                FeedEventKind.GAP, now, symbol=sym, first_update_id=result.expected,  # type: ignore[union-attr]
                last_update_id=result.got_first - 1,  # type: ignore[union-attr]
                detail="depth update ids missing on every connection",
            )
            self._resync(inst, now, "gap")
        elif kind is bs.Crossed:
            self._health(FeedEventKind.CROSSED, now, symbol=sym, last_update_id=result.last_update_id,  # type: ignore[union-attr]
                         detail="best bid >= best ask")
            self._resync(inst, now, "crossed book")
        elif kind is bs.Stale:
            log.info("snapshot older than buffered diffs; fetching again", extra={"symbol": sym})
            self._want_snapshot(inst)
        elif kind is bs.Duplicate:
            inst.diffs.duplicates += 1

    def _resync(self, inst: _Instrument, now: int, why: str) -> None:
        sym = inst.symbol
        self._metrics.resyncs.labels(sym).inc()
        self._health(
            FeedEventKind.STALE, now, symbol=sym, last_update_id=inst.sync.book.last_update_id,
            detail=f"book stale after {why}; last true state at this update id",
        )
        self._health(FeedEventKind.RESYNC, now, symbol=sym, detail=f"resync after {why}: fetching snapshot")
        inst.unsynced_since = inst.unsynced_since if inst.unsynced_since is not None else now
        self._want_snapshot(inst)

    def _publish_synced(self, inst: _Instrument, result: bs.Synced, now: int) -> None:
        snap = result.snapshot
        sid = snap.last_update_id
        self._sink(Topic.BOOK, inst.key, "BookDelta", {
            "venue": self.venue, "symbol": inst.symbol, "snapshot": True,
            "first_update_id": sid, "last_update_id": sid,
            "bids": _levels(snap.bids), "asks": _levels(snap.asks),
            "ts_event": snap.ts_recv, "ts_recv": snap.ts_recv,
        })
        for diff in result.applied:
            self._sink(Topic.BOOK, inst.key, "BookDelta", {
                "venue": self.venue, "symbol": inst.symbol, "snapshot": False,
                "first_update_id": diff.first_id, "last_update_id": diff.last_id,
                "bids": _levels(diff.bids), "asks": _levels(diff.asks),
                "ts_event": diff.ts_event, "ts_recv": diff.ts_recv,
            })
        inst.synced_once = True
        inst.snapshot_refusals, inst.snapshot_retry_at, inst.unsynced_since = 0, None, None
        self._publish_book_snapshot(inst, now)
        self._health(
            FeedEventKind.RECOVERED, now, symbol=inst.symbol, last_update_id=inst.sync.book.last_update_id,
            count=len(result.applied), detail=f"book true from snapshot {sid} (+{len(result.applied)} buffered diffs)",
        )

    def _backfill(self, inst: _Instrument, first: int, last: int, now: int) -> None:
        if not self._can_backfill:
            self._health(FeedEventKind.OTHER, now, symbol=inst.symbol, first_update_id=first, last_update_id=last,
                         count=last - first + 1, detail=f"trades {first}..{last} lost: the venue's trade history "
                         "cannot be fetched by trade id")
            return
        if last - first + 1 > self._max_backfill:
            kept = last - self._max_backfill + 1
            self._health(FeedEventKind.OTHER, now, symbol=inst.symbol, first_update_id=first, last_update_id=kept - 1,
                         count=kept - first, detail=f"trades {first}..{kept - 1} lost: backfill keeps the newest {self._max_backfill}")
            first = kept
            if first > last:
                return
        inst.missing_trades.append([first, last, first])
        self._want_trades(inst)

    def _want_trades(self, inst: _Instrument) -> None:
        if inst.missing_trades and not inst.trades_wanted:
            inst.trades_wanted = True
            self._cb.request_trades(inst.symbol, inst.missing_trades[0][0])

    def _want_snapshot(self, inst: _Instrument) -> None:
        if not inst.snapshot_wanted:
            inst.snapshot_wanted = True
            self._cb.request_snapshot(inst.symbol)

    def _health(self, kind: FeedEventKind, now: int, *, symbol: str = "", **fields: Any) -> None:
        record = self._events.build(kind, now, symbol=symbol, **fields)
        key = self._instruments[symbol].key if symbol in self._instruments else self._events.key
        self._sink(Topic.HEALTH, key, "FeedEvent", record)

    def _dead_letter(
        self, connection_id: str, data: str | bytes, reason: str, now: int, symbol: str = "", source: str | None = None
    ) -> None:
        self.dead_letters += 1
        # label by the reason's fixed prefix (no values, so label cardinality stays bounded)
        self._metrics.dead_letters.labels(reason.split(":")[0].split("'")[0].strip()[:40]).inc()
        if self.dead_letters <= 20 or self.dead_letters % 1000 == 0:
            log.warning("bad venue input sent to dlq", extra={
                "reason": reason, "connection": connection_id, "raw": str(data)[:300], "dead_letters": self.dead_letters,
            })
        src = source or self._urls.get(connection_id, connection_id)
        self._sink(Topic.DLQ, self._events.key, "DeadLetter", dead_letter(self.venue, src, data, reason, now, symbol))
