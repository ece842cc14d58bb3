"""Start-up before any signal: venue rules and rate limits, the risk engine, positions and the baseline, depth.

The venue is called until it answers (a venue still starting is not an error of the executor); its
answers are turned into the executor's parts by pure functions (:func:`risk_engine`,
:func:`trader_config`, :func:`depth_records`, :func:`seed_records`). Full depth comes from the feed's
md.book.snapshots (:func:`load_books`), the venue's REST depth only for an instrument it has none of.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from confluent_kafka import KafkaException

from executor.market import MarketView
from executor.metrics import ExecutorMetrics
from executor.policy import PolicyParams
from executor.positions import Positions
from executor.reconcile import FillsReplay, Reconciliation, rebuild_positions, reconcile
from executor.risk import RiskEngine, RiskLimits, TradingState, buckets_from_rate_limits
from executor.trader import TraderConfig
from executor.venue import BinanceVenue, RateLimited, VenueClock, VenueError
from infra.backoff import Backoff
from infra.book_snapshots import SnapshotRecord, book_offsets, latest_snapshots, resume_time_ms
from infra.settings import ExecutorSettings, KafkaSettings
from schemas.serde import AvroSerde, SerdeError
from schemas.topics import instrument_key

log = logging.getLogger(__name__)

REST_DEPTH_LIMIT = 100  # levels per side of the venue's depth snapshot loaded at start

T = TypeVar("T")


def until_answered(what: str, call: Callable[[], T], stopping: Callable[[], bool]) -> T:
    """Call the venue until it answers: retriable failures back off (capped, jittered, Retry-After)."""
    backoff = Backoff(0.2, 5.0)
    while True:
        try:
            return call()
        except VenueError as exc:
            if not exc.retriable or stopping():
                raise
            wait = exc.retry_after_s if isinstance(exc, RateLimited) else backoff.next_delay()
            log.warning("venue unavailable at start; retrying", extra={"call": what, "error": str(exc), "wait_s": wait})
            time.sleep(wait)


def risk_engine(settings: ExecutorSettings, rate_limits: list[dict[str, Any]], clock: Callable[[], int]) -> RiskEngine:
    """The risk engine: limits from settings, one order-rate bucket per venue ORDERS limit, the initial state.

    A bad ``reconcile_breach_state`` fails here, at start, not at the first breach.
    """
    s = settings
    buckets = buckets_from_rate_limits(rate_limits, s.rate_limit_fraction, lambda: clock() / 1e9)
    limits = RiskLimits(s.max_order_notional, s.max_position, s.max_open_orders, s.price_band_bps,
                        s.max_throttle_wait_ms / 1000)
    TradingState(s.reconcile_breach_state)
    log.info("order rate buckets from venue rateLimits", extra={"buckets": [(round(b.rate, 3), b.burst) for b in buckets]})
    return RiskEngine(limits, buckets, TradingState(s.initial_state))


def trader_config(settings: ExecutorSettings) -> TraderConfig:
    """The trader's and its policy's parameters, durations in ns."""
    s, ms = settings, 1_000_000
    policy = PolicyParams(
        s.passive_ttl_ms * ms, s.reprice_ticks, s.improve_ticks, s.cross_min_urgency,
        s.passive_window_ms * ms, s.max_slippage_bps, s.depth_fraction,
    )
    return TraderConfig(s.venue, s.account, policy, s.max_attempts, s.poll_interval_ms * ms,
                        s.settle_retry_ms * ms, s.market_wait_ms * ms, s.recv_window_ms, s.max_book_age_ms * ms,
                        s.request_timeout_ms * ms)


def reconcile_at_start(
    kafka: KafkaSettings, serde: AvroSerde, venue: BinanceVenue, positions: Positions, fills: FillsReplay,
    clock: Callable[[], int], stopping: Callable[[], bool],
) -> tuple[Reconciliation, VenueClock]:
    """Positions from the account's Fills, then our open orders canceled and the baseline balances read.

    Returns the reconciliation and the venue clock measured just before it (which dates the baseline).
    """
    rebuild_positions(kafka.bootstrap, serde, fills)
    venue_clock = until_answered("time", venue.server_time, stopping)
    reconciliation = until_answered("reconcile", lambda: reconcile(venue, clock), stopping)
    positions.asset_delta.clear()  # the baseline balances hold every fill read back
    # a trade of before the balances were read, published only later (a replay), is in them already
    positions.baseline_ms = venue_clock.venue_ms(reconciliation.balances_at_ns)
    return reconciliation, venue_clock


def depth_records(depth: dict[str, Any], venue: str, symbol: str, now: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A venue depth snapshot as the ``BBO`` and ``BookDelta`` snapshot records of the feed; None if a side is empty."""
    if not depth.get("bids") or not depth.get("asks"):
        return None
    uid = int(depth["lastUpdateId"])
    (bid, bid_qty), (ask, ask_qty) = depth["bids"][0][:2], depth["asks"][0][:2]
    bbo = {"venue": venue, "symbol": symbol, "update_id": uid, "bid_price": bid, "bid_qty": bid_qty,
           "ask_price": ask, "ask_qty": ask_qty, "ts_recv": now}
    book = {"venue": venue, "symbol": symbol, "snapshot": True, "first_update_id": uid, "last_update_id": uid,
            "ts_recv": now, "bids": [{"price": p, "qty": q} for p, q, *_ in depth["bids"]],
            "asks": [{"price": p, "qty": q} for p, q, *_ in depth["asks"]]}
    return bbo, book


def seed_records(snapshot: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """An md.book.snapshots record with the ``BBO`` of its best levels; None if it is no snapshot or a side is empty."""
    if not snapshot["snapshot"] or not snapshot["bids"] or not snapshot["asks"]:
        return None
    bid = max(snapshot["bids"], key=lambda level: Decimal(level["price"]))
    ask = min(snapshot["asks"], key=lambda level: Decimal(level["price"]))
    bbo = {"venue": snapshot["venue"], "symbol": snapshot["symbol"], "update_id": snapshot["last_update_id"],
           "bid_price": bid["price"], "bid_qty": bid["qty"], "ask_price": ask["price"], "ask_qty": ask["qty"],
           "ts_event": snapshot["ts_event"], "ts_recv": snapshot["ts_recv"]}
    return bbo, snapshot


def load_books(
    kafka: KafkaSettings, serde: AvroSerde, venue: BinanceVenue, market: MarketView, metrics: ExecutorMetrics,
    venue_name: str, symbols: list[str], clock: Callable[[], int],
) -> dict[int, int] | None:
    """Full depth of ``symbols`` at once after a (re)start, instead of waiting for the feed's next resync.

    Each book starts from the feed's latest md.book.snapshots record; the venue's REST depth serves a
    symbol without one (a feed that does not publish them, a topic not readable). Return where md.book
    is to be read from so that the deltas after those snapshots are applied (None: its tail, as before).
    """
    if not symbols:
        return None
    used: list[SnapshotRecord] = []
    try:
        snapshots = latest_snapshots(kafka.bootstrap)
    except (KafkaException, TimeoutError) as exc:
        log.warning("md.book.snapshots unreadable; REST depth instead", extra={"error": str(exc)})
        snapshots = {}
    for symbol in symbols:
        seed = snapshots.get(instrument_key(venue_name, symbol))
        records = _seed_of(serde, metrics, seed, venue_name, symbol) if seed is not None else None
        if seed is None or records is None:
            load_depth(venue, market, venue_name, symbol, clock)
            continue
        market.on_bbo(records[0])
        market.on_book(records[1])
        used.append(seed)
        log.info("book loaded from md.book.snapshots", extra={"symbol": symbol, "update_id": records[1]["last_update_id"]})
    since_ms = resume_time_ms(used, kafka.book_snapshot_lookback_ms)
    if since_ms is None:
        return None
    try:
        return book_offsets(kafka.bootstrap, None, since_ms)
    except KafkaException as exc:
        log.warning("md.book offsets by time unreadable; its tail instead", extra={"error": str(exc)})
        return None


def _seed_of(
    serde: AvroSerde, metrics: ExecutorMetrics, seed: SnapshotRecord, venue_name: str, symbol: str
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    # the seed's BBO and book, or None (counted and logged) for a record that is not this instrument's snapshot
    try:
        record = serde.decode_as("BookDelta", seed.value)
    except SerdeError as exc:
        problem = str(exc)
    else:
        records = seed_records(record) if (record["venue"], record["symbol"]) == (venue_name, symbol) else None
        if records is not None:
            return records
        problem = f"not a two-sided snapshot of {venue_name}:{symbol}"
    metrics.md_errors.inc()
    log.warning("unusable md.book.snapshots record; REST depth instead", extra={
        "symbol": symbol, "partition": seed.partition, "offset": seed.offset, "error": problem})
    return None


def load_depth(venue: BinanceVenue, market: MarketView, venue_name: str, symbol: str, clock: Callable[[], int]) -> None:
    """Full depth at once after a (re)start: the venue's REST snapshot, instead of waiting for the feed's next one."""
    try:
        depth = venue.depth(symbol, REST_DEPTH_LIMIT)
    except VenueError as exc:
        log.warning("REST depth snapshot failed; waiting for the feed's", extra={"symbol": symbol, "error": str(exc)})
        return
    records = depth_records(depth, venue_name, symbol, clock())
    if records is not None:
        market.on_bbo(records[0])
        market.on_book(records[1])
