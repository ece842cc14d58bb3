"""Typed views of the records, for type checkers: one ``TypedDict`` per ``.avsc`` record.

The ``.avsc`` files stay the single source of truth; these mirror them field for field (a unit test
compares names and types), so ``record: Trade = serde.decode_as("Trade", data)`` type-checks
field access. Enums are ``Literal`` types; ``["null", X]`` unions are ``X | None``. Every key is
required: the decoder always returns every field, defaults filled in.
"""

from __future__ import annotations

from typing import Literal, TypedDict

Side = Literal["buy", "sell"]
FeedEventKind = Literal[
    "connect",
    "disconnect",
    "gap",
    "resync",
    "stale",
    "crossed",
    "recovered",
    "backpressure",
    "dropped",
    "stalled",
    "rollover",
    "invalid",
    "other",
]
ExecutorEventKind = Literal["reconciliation_diff", "reconciliation_clear", "risk_state", "other"]
OrderStatus = Literal[
    "pending_new",
    "new",
    "partially_filled",
    "filled",
    "pending_cancel",
    "canceled",
    "rejected",
    "expired",
    "denied",
    "unknown",
]


class Level(TypedDict):
    """One price level of a BookDelta; qty "0" removes the level."""

    price: str
    qty: str


class AssetDiff(TypedDict):
    """One asset's balance difference in an ExecutorEvent, exact decimal string."""

    asset: str
    qty: str
    priced: bool


class OpenOrder(TypedDict):
    """An open venue order that differs from the executor's view (ExecutorEvent)."""

    symbol: str
    client_order_id: str
    ours: bool


class InputOffset(TypedDict):
    """Kafka position of one input of a Signal."""

    topic: str
    partition: int
    offset: int


class Trade(TypedDict):
    """One venue trade. Idempotency key: (venue, symbol, trade_id)."""

    venue: str
    symbol: str
    trade_id: int
    price: str
    qty: str
    side: Side
    ts_event: int
    ts_recv: int


class BookDelta(TypedDict):
    """Changed book levels. Idempotency key: (venue, symbol, first_update_id, last_update_id).
    snapshot=true replaces the whole book (first after every (re)sync).
    """

    venue: str
    symbol: str
    snapshot: bool
    first_update_id: int
    last_update_id: int
    bids: list[Level]
    asks: list[Level]
    ts_event: int
    ts_recv: int


class BBO(TypedDict):
    """Best bid and offer. Idempotency key: (venue, symbol, update_id)."""

    venue: str
    symbol: str
    update_id: int
    bid_price: str
    bid_qty: str
    ask_price: str
    ask_qty: str
    ts_event: int
    ts_recv: int


class Instrument(TypedDict):
    """A venue instrument's reference data as the venue publishes it: the venue's own symbol mapped to base and quote
    asset, price tick and quantity lot. Key venue:symbol; the newest record of an instrument is its current
    definition. Idempotency key: (venue, symbol, ts_recv).
    """

    venue: str
    symbol: str
    base: str
    quote: str
    tick_size: str
    lot_size: str
    ts_event: int
    ts_recv: int


class FeedEvent(TypedDict):
    """Feed health event. Idempotency key: event_id."""

    event_id: str
    venue: str
    symbol: str
    kind: FeedEventKind
    connection_id: str
    detail: str
    first_update_id: int | None
    last_update_id: int | None
    count: int
    ts_event: int
    ts_recv: int


class BookFeatures(TypedDict):
    """Order-book features. Idempotency key: (venue, symbol, update_id)."""

    venue: str
    symbol: str
    update_id: int
    mid: float
    spread: float
    spread_bps: float
    microprice: float
    imbalance_1: float
    imbalance_5: float
    imbalance_10: float
    depth_bid_10bps: float
    depth_ask_10bps: float
    ts_event: int
    ts_recv: int
    ts_emit: int


class FlowFeatures(TypedDict):
    """Trade-flow features over rolling windows. Idempotency key: (venue, symbol, last_trade_id)."""

    venue: str
    symbol: str
    last_trade_id: int
    volume_imbalance_1s: float
    volume_imbalance_10s: float
    volume_imbalance_60s: float
    count_imbalance_1s: float
    count_imbalance_10s: float
    count_imbalance_60s: float
    signed_volume_60s: float
    realized_vol_60s: float
    vwap_60s: float
    ts_event: int
    ts_recv: int
    ts_emit: int


class VenueQuote(TypedDict):
    """One live venue's top of book in a CrossVenueBBO: its mid and that mid against the consolidated mid."""

    venue: str
    symbol: str
    bid_price: str
    ask_price: str
    mid: str
    bps_vs_mid: str
    update_id: int
    recv: int


class StaleVenue(TypedDict):
    """A venue left out of a CrossVenueBBO, the reason and since when."""

    venue: str
    symbol: str
    reason: str
    since: int


class CrossVenueBBO(TypedDict):
    """Consolidated best bid and offer of one base/quote pair across venues, and each live venue's mid against the
    consolidated mid. Key cross:BASE/QUOTE. Idempotency key: (symbol, source_topic, source_partition, source_offset).
    """

    venue: str
    symbol: str
    base: str
    quote: str
    bid_price: str | None
    bid_qty: str | None
    bid_venues: str
    ask_price: str | None
    ask_qty: str | None
    ask_venues: str
    mid: str | None
    quotes: list[VenueQuote]
    stale: list[StaleVenue]
    trigger_venue: str
    trigger_symbol: str
    source_topic: str
    source_partition: int
    source_offset: int
    ts_event: int
    ts_recv: int
    ts_emit: int


class Bar(TypedDict):
    """OHLCV bar by event time. Idempotency key: (venue, symbol, interval, start, version)."""

    venue: str
    symbol: str
    interval: str
    start: int
    end: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    vwap: str
    trade_count: int
    first_trade_id: int
    last_trade_id: int
    version: int
    ts_event: int
    ts_recv: int
    ts_emit: int


class Signal(TypedDict):
    """Trading signal. Idempotency key: signal_id, derived from its inputs' offsets."""

    signal_id: str
    venue: str
    symbol: str
    side: Side
    strength: float
    target: str
    urgency: float
    model: str
    expires_at: int
    reference_price: str
    inputs: list[InputOffset]
    ts_event: int
    ts_recv: int
    ts_emit: int
    ts_md_ack: int | None
    ts_in: int | None
    backtest_id: str


class OrderEvent(TypedDict):
    """One order state transition. Idempotency key: (client_order_id, seq)."""

    client_order_id: str
    seq: int
    signal_id: str
    venue: str
    symbol: str
    side: Side
    order_type: str
    time_in_force: str | None
    price: str | None
    qty: str
    status: OrderStatus
    previous_status: OrderStatus | None
    filled_qty: str
    avg_price: str | None
    venue_order_id: str | None
    reason: str | None
    error_code: int | None
    ts_event: int
    ts_recv: int
    ts_emit: int
    ts_signal_ack: int | None
    ts_in: int | None
    ts_sent: int | None
    backtest_id: str


class Fill(TypedDict):
    """One execution of our order. Idempotency key: (venue, symbol, trade_id)."""

    venue: str
    symbol: str
    trade_id: int
    client_order_id: str
    venue_order_id: str
    signal_id: str
    side: Side
    price: str
    qty: str
    fee: str
    fee_asset: str
    liquidity: str
    account: str
    ts_event: int
    ts_recv: int
    ts_emit: int
    backtest_id: str


class ExecutorEvent(TypedDict):
    """Executor health event: a reconciliation difference found or cleared, a trading-state change.
    Idempotency key: event_id.
    """

    event_id: str
    venue: str
    symbol: str
    account: str
    kind: ExecutorEventKind
    detail: str
    balance_diffs: list[AssetDiff]
    value_quote: str | None
    open_orders: list[OpenOrder]
    trading_state: str
    state_reason: str
    ts_event: int
    ts_recv: int
    ts_emit: int


class DeadLetter(TypedDict):
    """Input that could not be processed. Idempotency key: (stage, source_topic, partition, offset) or hash
    of raw.
    """

    venue: str
    symbol: str
    stage: str
    source_topic: str
    partition: int
    offset: int
    raw: bytes
    error: str
    ts_event: int
    ts_recv: int
