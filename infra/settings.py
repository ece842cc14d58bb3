"""All tickpipe settings, in one place.

Each component has one frozen settings class read from the environment with the prefix
``TICKPIPE_`` (nested classes use ``__``, e.g. ``TICKPIPE_KAFKA__BOOTSTRAP``). An unknown
``TICKPIPE_*`` variable or an invalid value stops the program at start with a message naming it.
The CLI loads :class:`Settings` once and passes the parts down; no other module reads ``os.environ``.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "TICKPIPE_"


# Topics whose records are kept forever unless topic_retention_ms names them: the executor rebuilds its
# positions from every Fill of its account at start, and orders are the history they belong to;
# md.instruments is the reference data (an instrument is defined once, when a feed starts).
KEPT_TOPICS_RETENTION_MS: dict[str, int] = {"fills": -1, "orders": -1, "md.instruments": -1}


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    """Broker connection and topic layout."""

    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers (host:port,...)")
    partitions: int = Field(4, ge=1, description="partitions per topic at `tickpipe topics create`")
    replication_factor: int = Field(1, ge=1, description="replication factor at topic creation")
    retention_ms: int = Field(7 * 24 * 3600 * 1000, description="topic retention (ms); -1 keeps forever")
    topic_retention_ms: dict[str, int] = Field(
        dict(KEPT_TOPICS_RETENTION_MS),
        description='per-topic retention (ms) overriding retention_ms, JSON: {"md.book": 86400000}, laid over the '
        "default, which keeps fills, orders and md.instruments forever (the executor rebuilds its positions from fills); "
        "applied to existing topics too",
    )
    session_timeout_ms: int = Field(6000, ge=1000, description="consumer-group session timeout (ms)")
    heartbeat_interval_ms: int = Field(1500, ge=100, description="consumer-group heartbeat interval (ms)")
    schema_registry_url: str | None = Field(
        None, description="Confluent Schema Registry URL; unset = Avro single-object encoding"
    )
    # Latency: every service's producer and consumer waits, in one place (docs/architecture.md "Latency knobs").
    feed_linger_ms: float = Field(
        1.0, ge=0, description="feed producer linger.ms: a market-data record waits this long for batch-mates; while a "
        "request is in flight records queue anyway, so under load batches stay big (latency vs. requests per second)",
    )
    streams_linger_ms: float = Field(
        0.0, ge=0, description="streams producer linger (ms): 0 sends each output at once; the agents' batches already "
        "group outputs, and a batch waits for their acknowledgement before its changelog write",
    )
    streams_fetch_max_wait_ms: int = Field(
        20, ge=1, description="streams worker fetch wait (ms): aiokafka sends no new fetch to a broker while one is "
        "held, so a partition resumed meanwhile waits up to this long (Faust's own value: 1500; lower = more empty "
        "fetches on a quiet topic)",
    )
    executor_linger_ms: float = Field(
        2.0, ge=0, description="executor producer linger.ms (order events, fills): the order itself goes to the venue "
        "before its event is produced, so this delays the record, not the order; 2 ms rather than 1 ms batches a "
        "burst's events into fewer requests (bench/executor.py sustained orders/s ~6 % higher, docs/benchmarks.md)",
    )
    executor_fetch_wait_ms: int = Field(
        5, ge=0, description="executor consumers' fetch.wait.max.ms (signals, market data): the broker answers at "
        "once when data arrives, so this bounds only an idle fetch (latency after a quiet spell vs. broker load)",
    )
    sink_fetch_wait_ms: int = Field(
        100, ge=0, description="sink consumer fetch.wait.max.ms: the archive is written in batches of "
        "sink.batch_max_ms anyway, so a longer idle fetch costs no archive latency and spares the broker",
    )
    # md.book.snapshots: the feed's latest book per instrument, for consumers that join mid-stream
    book_snapshots_segment_ms: int = Field(
        60_000, ge=1000, description="segment.ms of the compacted md.book.snapshots: the log cleaner compacts only "
        "closed segments, so this bounds how many old snapshots a late joiner reads past (Kafka's default: 7 days)",
    )
    book_snapshot_lookback_ms: int = Field(
        15_000, ge=0, description="a late joiner (streams worker without committed md.book offsets, executor at start) "
        "reads md.book from this long before the newest md.book.snapshots record: at least the feed's "
        "book_snapshot_interval_s (every live book has a snapshot that recent) plus the broker's append-time skew "
        "between the two topics; deltas the snapshots already hold are skipped",
    )
    fetch_queue_backoff_ms: int = Field(
        10, ge=0, description="fetch.queue.backoff.ms of every confluent-kafka consumer (sink, executor): librdkafka's "
        "1000 ms default stalls fetching for up to 1 s whenever its prefetch queue is full (halved sink throughput)",
    )

    @field_validator("topic_retention_ms", mode="after")
    @classmethod
    def _keep_fills_and_orders(cls, value: dict[str, int]) -> dict[str, int]:
        # a setting naming other topics must not let fills expire: the executor's start-up positions are their sum
        return {**KEPT_TOPICS_RETENTION_MS, **value}


class BrokerSettings(_Section):
    """The local Apache Kafka node (KRaft, broker + controller) run by `tickpipe broker`."""

    host: str = Field("127.0.0.1", description="listen address of the local broker")
    port: int = Field(9092, description="listen port of the local broker (Kafka clients)")
    controller_port: int = Field(9093, description="listen port of the local node's KRaft controller")
    start_timeout_s: float = Field(60.0, description="how long to wait for the first metadata response")
    data_dir: Path = Field(
        Path(".tickpipe/kafka"), description="the broker's log and metadata, formatted on first start and kept"
    )
    libs_dir: Path | None = Field(
        None, description="Kafka's jars; unset = .kafka/libs in the checkout, where `make install` copies them from "
        "Maven Central (infra/kafka/pom.xml)",
    )
    heap_mb: int = Field(512, ge=128, description="the broker JVM heap (MB), fixed at start; the page cache holds the data")


class WarehouseSettings(_Section):
    """The ClickHouse endpoint (local chdb warehouse or a real server)."""

    url: str = Field("http://127.0.0.1:8123", description="ClickHouse HTTP URL used by sink, sql, reports")
    database: str = Field("tickpipe", description="database holding the archive tables")
    user: str = Field("default", description="ClickHouse user")
    password: str = Field(
        "", description="ClickHouse password (warehouse: required when set; needed to listen beyond loopback)"
    )
    data_dir: Path = Field(Path(".tickpipe/warehouse"), description="chdb store owned by `tickpipe warehouse`")
    host: str = Field("127.0.0.1", description="listen address of `tickpipe warehouse`")
    port: int = Field(8123, description="listen port of `tickpipe warehouse`")
    workers: int = Field(4, ge=1, description="`tickpipe warehouse`: chdb handles = statements run in parallel")
    max_request_bytes: int = Field(
        1 << 30, ge=1 << 20, description="`tickpipe warehouse`: largest accepted request body (compressed)"
    )
    spool_dir: Path | None = Field(
        None, description="`tickpipe warehouse`: where insert data is spooled for chdb; unset = /dev/shm, else temp dir"
    )
    allow_network_sources: bool = Field(
        False, description="`tickpipe warehouse`: admit url(), s3(), remote(), mysql() and the other sources that "
        "reach other hosts (never executable(), python())",
    )
    max_decompressed_bytes: int = Field(
        1 << 30, ge=1 << 20,
        description="`tickpipe warehouse`: largest request body once its Content-Encoding is undone (271 past it)",
    )
    user_files_dir: Path | None = Field(
        None,
        description="`tickpipe warehouse`: the only directory file(), File engines and path-named tables may use "
        "(ClickHouse's user_files_path); unset = file access refused",
    )
    display_name: str = Field("tickpipe-warehouse", description="X-ClickHouse-Server-Display-Name header")
    shutdown_timeout_s: float = Field(30.0, gt=0, description="SIGTERM: how long in-flight requests may finish")


class SimExchangeSettings(_Section):
    """The simulated Binance-spot-compatible exchange."""

    host: str = Field("127.0.0.1", description="listen address")
    port: int = Field(8765, description="REST + websocket port")
    symbols: str = Field("BTCUSDT,ETHUSDT", description="comma-separated symbols")
    seed: int = Field(7, description="random seed of the background order flow")
    events_per_s: float = Field(200.0, ge=0, description="background book events per second, all symbols")
    seed_orders: int = Field(300, ge=0, description="limit orders per symbol placed before serving (initial depth)")
    accounts: str = Field(
        "tickpipe-sim-key:tickpipe-sim-secret",
        description="comma-separated API accounts KEY:SECRET[:MAKER_FEE:TAKER_FEE]",
    )
    balances: str = Field(
        "USDT:1000000,BTC:100,ETH:1000,BNB:1000,SOL:1000",
        description="starting balances of every account, ASSET:AMOUNT comma-separated",
    )
    maker_fee: str = Field("0.001", description="default maker fee rate (0.001 = 0.1 %)")
    taker_fee: str = Field("0.001", description="default taker fee rate")
    weight_limit_1m: int = Field(6000, ge=1, description="REQUEST_WEIGHT limit per IP per minute")
    orders_limit_10s: int = Field(100, ge=1, description="ORDERS limit per account per 10 s")
    orders_limit_1d: int = Field(200_000, ge=1, description="ORDERS limit per account per day")
    depth_fast_ms: int = Field(100, ge=10, description="interval of the @depth@100ms diff stream")
    depth_slow_ms: int = Field(1000, ge=10, description="interval of the @depth (1000ms) diff stream")
    ping_interval_s: float = Field(20.0, gt=0, description="server ping frame interval")
    pong_timeout_s: float = Field(60.0, gt=0, description="disconnect a connection that sent no pong for this long")
    max_connection_s: float = Field(86_400.0, gt=0, description="connection lifetime limit (Binance: 24 h)")
    inbound_msgs_per_s: int = Field(5, ge=1, description="incoming websocket messages per second before disconnect")
    max_streams_per_connection: int = Field(1024, ge=1, description="stream subscriptions allowed per connection")
    max_queued_frames: int = Field(200_000, ge=100, description="outbound frames queued per slow connection before disconnect")
    faults: str = Field("", description="faults JSON applied at start (same body as POST /_sim/faults)")
    trade_history_max: int = Field(
        5_000_000, ge=1000, description="trades kept per symbol for /api/v3/trades and /_sim/trades (older ones are forgotten)"
    )


class FeedSettings(_Section):
    """Feed producers."""

    venue: str = Field("binance", description="venue adapter")
    symbols: str = Field("BTCUSDT,ETHUSDT", description="comma-separated symbols")
    connections: int = Field(2, ge=1, description="redundant websocket connections carrying the same streams")
    ws_url: str = Field("ws://127.0.0.1:8765", description="venue websocket base URL")
    rest_url: str = Field("http://127.0.0.1:8765", description="venue REST base URL")
    buffer_max_records: int = Field(1_000_000, ge=1, description="RAM buffer bound while Kafka is unreachable")
    stall_timeout_s: float = Field(2.0, gt=0, description="a connection silent this long while peers receive is replaced")
    silence_timeout_s: float = Field(
        30.0, gt=0, description="every connection without a frame this long = all are replaced (a market is never that quiet)"
    )
    metrics_port: int = Field(9101, description="Prometheus metrics + /health port")
    kraken_symbols: str = Field(
        "BTC/USDT,ETH/USDT", description="symbols of the stack's Kraken feed (`tickpipe up`; the simulator's pairs)"
    )
    kraken_metrics_port: int = Field(9105, description="metrics + /health port of the stack's Kraken feed")
    coinbase_symbols: str = Field(
        "BTC-USDT,ETH-USDT", description="symbols of the stack's Coinbase feed (`tickpipe up`; the simulator's products)"
    )
    coinbase_metrics_port: int = Field(9106, description="metrics + /health port of the stack's Coinbase feed")
    reorder_hold_ms: int = Field(
        500, ge=0, description="an event ahead of a missing one waits this long for a peer connection to fill the hole"
    )
    max_connection_age_s: float = Field(
        23.5 * 3600, gt=0, description="planned overlapping rollover of a connection at this age (venue limit: 24 h)"
    )
    backoff_base_s: float = Field(0.1, gt=0, description="first reconnect delay; doubles per failure, with jitter")
    backoff_cap_s: float = Field(30.0, gt=0, description="longest reconnect delay")
    max_attempts: int = Field(300, ge=1, description="connection attempts allowed per attempt window (venue: 300)")
    attempt_window_s: float = Field(300.0, gt=0, description="window of the connection attempt budget (venue: 5 min)")
    snapshot_min_interval_s: float = Field(0.25, ge=0, description="least time between two REST snapshots of a symbol")
    snapshot_timeout_s: float = Field(10.0, gt=0, description="HTTP timeout of a REST depth snapshot")
    snapshot_refused_pause_s: float = Field(
        30.0, gt=0, description="a depth snapshot the venue refused as not retriable (403, ...) is asked again "
        "after this pause, doubling per refusal (equal jitter)",
    )
    snapshot_refused_max_pause_s: float = Field(300.0, gt=0, description="longest pause between refused snapshot requests")
    unsynced_unhealthy_s: float = Field(
        30.0, gt=0, description="/health turns 503 while a book that was true has been unsynced this long",
    )
    max_book_buffer: int = Field(100_000, ge=1, description="depth diffs buffered per symbol while syncing")
    max_backfill_trades: int = Field(
        100_000, ge=0, description="most trades of one gap (or of a restart's downtime) fetched from the venue's trade history"
    )
    delivery_timeout_ms: int = Field(
        300_000, ge=1000, description="a record Kafka has not acknowledged after this long counts as failed"
    )
    backpressure_after_s: float = Field(
        3.0, gt=0, description="no acknowledgement for this long while records wait = broker unreachable"
    )
    flush_timeout_s: float = Field(30.0, gt=0, description="on SIGTERM, how long to wait for Kafka to take the buffer")
    book_snapshot_interval_s: float = Field(
        5.0, ge=0, description="publish each live book whole on md.book.snapshots this often when it changed (and "
        "after every resync), so a consumer joining mid-stream has full depth at once; 0 = never",
    )


class StreamsSettings(_Section):
    """Faust stream processors."""

    app_id: str = Field("tickpipe-streams", description="Faust app id (consumer group)")
    web_port: int = Field(9102, description="Faust web (metrics + /health) port")
    data_dir: Path = Field(Path(".tickpipe/streams"), description="Faust table data directory")
    book_features_interval_ms: int = Field(0, ge=0, description="throttle book features per instrument; 0 = every update")
    book_max_levels: int = Field(
        5000, ge=0,
        description="levels kept per book side, the best ones (0 = all); a venue snapshot's depth bounds what is "
        "known (Binance: 5,000)",
    )
    bbo_features: bool = Field(
        False,
        description="also read md.bbo: book features per best bid/offer newer than the book (the book with that "
        "top laid over it); no signals from it. Off by default: BBOs outnumber depth updates ~18 to 1",
    )
    bar_allowed_lateness_ms: int = Field(2000, ge=0, description="late trades within this correct a bar")
    flow_bucket_ms: int = Field(
        100, ge=1, le=1000,
        description="flow windows: event-time bucket width (ms, must divide 1000); windows are bucket-aligned "
        "and the saved state is at most 60 s / bucket per instrument, whatever the trade rate",
    )
    store: str = Field(
        "memory://", description="Faust table store; memory:// rebuilds tables from their changelog topics at start"
    )
    standby_replicas: int = Field(1, ge=0, description="standby table copies kept by other workers")
    rebalance_timeout_ms: int = Field(6000, ge=1000, description="consumer-group rebalance timeout (ms)")
    commit_interval_ms: int = Field(1000, ge=10, description="offset commit interval (ms)")
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once",
        description="Faust's guarantee; exactly_once = Kafka transactions per partition (measured slower and not "
        "needed: outputs carry idempotency keys, see docs/architecture.md)",
    )
    batch_size: int = Field(1000, ge=1, description="records taken per agent batch (stream.take)")
    batch_gap_ms: float = Field(
        0.5, gt=0, description="a batch keeps filling while the next input follows within this gap (ms): events "
        "already fetched come microseconds apart, so a backlog makes big batches while an input alone waits at most "
        "this long (latency vs. per-batch cost: one acknowledgement round trip and one changelog write per instrument)",
    )
    batch_within_ms: int = Field(
        20, ge=1, description="upper bound on a batch's filling time from its first input (ms), reached only under "
        "sustained load",
    )
    instruments: str = Field("", description="comma-separated venue:symbol accepted; empty = any")
    seed_from_snapshots: bool = Field(
        True, description="a worker whose group has no committed offset on an md.book partition starts each book from "
        "md.book.snapshots and reads md.book from there (kafka.book_snapshot_lookback_ms); false = md.book from its "
        "beginning (features for the whole retained history, full books only from the first snapshot kept)",
    )
    ofi_window_ms: int = Field(1000, ge=1, description="signal model: OFI window (event time, ms)")
    ofi_min_updates: int = Field(5, ge=1, description="signal model: book updates needed in the window")
    ofi_threshold: float = Field(0.6, gt=0, le=1, description="signal model: |normalized OFI| to act")
    microprice_threshold: float = Field(0.3, ge=0, le=1, description="signal model: |microprice offset| / half spread to act")
    signal_cooldown_ms: int = Field(5000, ge=0, description="signal model: quiet time per instrument after a signal (event time)")
    signal_target_qty: str = Field(
        "0.01",
        description="signal target quantity in base units (decimal string), the same for every instrument; the "
        "default is a whole lot of BTCUSDT and ETHUSDT and above their 5 USDT min notional (~600 / ~30 USDT); "
        "the executor rounds it down to the venue's lot step and denies it if the venue's filters would refuse it",
    )
    signal_ttl_ms: int = Field(2000, ge=1, description="signal expires this long after its input's receive time")
    cross_venue: bool = Field(
        True,
        description="read md.instruments, md.bbo and md.health: consolidated best bid/offer per base/quote across "
        "venues, each venue's mid against it in bps, on features.cross",
    )
    cross_max_age_ms: int = Field(
        5000, ge=0,
        description="cross-venue: a venue without a BBO for this long drops out (measured on receive times: the "
        "newest input of the pair); 0 = never for age",
    )
    cross_interval_ms: int = Field(
        0, ge=0, description="cross-venue: at most one record per pair per this many ms (receive time); 0 = every change"
    )


class SinkSettings(_Section):
    """The ClickHouse sink."""

    group_id: str = Field("tickpipe-sink", description="consumer group")
    topics: str = Field("", description="comma-separated topics; empty = every topic")
    batch_max_rows: int = Field(50_000, ge=1, description="flush a batch at this many rows")
    batch_max_ms: int = Field(500, ge=1, description="flush a batch after this many ms")
    metrics_port: int = Field(9103, description="Prometheus metrics + /health port")
    consume_max_messages: int = Field(10_000, ge=1, description="messages taken from the consumer per poll")
    retry_initial_ms: int = Field(200, ge=1, description="first backoff pause when ClickHouse refuses an insert")
    retry_max_ms: int = Field(5_000, ge=1, description="longest backoff pause between insert retries")
    insert_timeout_s: float = Field(60.0, gt=0, description="HTTP timeout of one insert or query")
    max_poll_interval_ms: int = Field(
        900_000, ge=10_000, description="consumer max.poll.interval.ms: longest ClickHouse outage before the group rebalances"
    )
    shutdown_timeout_s: float = Field(15.0, gt=0, description="on SIGTERM, how long to keep retrying the last batch")
    commit_timeout_s: float = Field(
        10.0, gt=0, description="longest wait for one offset commit; past it the commit counts as refused and "
        "the loop goes back to polling (a commit blocked across a rebalance never returned)",
    )
    compress: bool = Field(False, description="compress insert bodies (worth it only for a remote ClickHouse)")
    columnar_decode: bool = Field(
        True, description="decode flat records column-wise into Arrow (off: fastavro dict per message, ~8x slower)"
    )


class ExecutorSettings(_Section):
    """The executor: venue client, execution policy and risk limits."""

    group_id: str = Field("tickpipe-executor", description="consumer group for `signals`")
    venue: str = Field("binance", description="venue")
    rest_url: str = Field("http://127.0.0.1:8765", description="venue REST base URL")
    api_key: str = Field("tickpipe-sim-key", description="venue API key")
    api_secret: str = Field("tickpipe-sim-secret", description="venue API secret")
    metrics_port: int = Field(9104, description="Prometheus metrics + /health port")
    control_topic: str = Field(
        "executor.control", description="compacted topic carrying the kill switch (`tickpipe executor halt/resume`)"
    )
    request_timeout_ms: int = Field(3000, ge=100, description="venue REST timeout; a timed-out order is `unknown`")
    ws_api_url: str = Field(
        "", description="venue WebSocket API URL (e.g. ws://127.0.0.1:8765/ws-api/v3): orders placed and canceled over "
        "it, order state and fills pushed by its user-data stream; REST while it is down. Empty = REST only"
    )
    ws_reconnect_base_ms: int = Field(200, ge=1, description="first WebSocket API reconnect pause (doubles, jittered)")
    ws_reconnect_cap_ms: int = Field(5000, ge=1, description="longest WebSocket API reconnect pause")
    symbols: str = Field(
        "", description="comma-separated symbols whose full book is loaded at start, from md.book.snapshots (the feed's "
        "latest) or else the venue's REST depth, instead of waiting for the feed's next resync; empty = none"
    )
    account: str = Field(
        "default", min_length=1,
        description="name of the venue account this executor trades (one executor per account); every Fill carries it "
        "and start-up positions are rebuilt from this account's Fills only",
    )
    # execution policy
    passive_ttl_ms: int = Field(2000, ge=1, description="reprice a resting passive order after this long")
    reprice_ticks: int = Field(3, ge=1, description="reprice a passive order when the best price moves this many ticks away")
    improve_ticks: int = Field(1, ge=0, description="quote this many ticks inside the best price (never crossing)")
    cross_min_urgency: float = Field(0.5, ge=0, le=1, description="signals below this urgency never take liquidity")
    passive_window_ms: int = Field(
        10_000, ge=0, description="passive time before crossing at urgency 0 (scaled by 1 - urgency)"
    )
    max_slippage_bps: Decimal = Field(Decimal(10), description="IOC limit price at most this far (bps) beyond the best opposite price")
    depth_fraction: Decimal = Field(Decimal("0.5"), description="take at most this fraction of the visible liquidity in one order")
    depth_levels: int = Field(20, ge=1, description="book levels kept per side for the depth computation")
    max_attempts: int = Field(50, ge=1, description="orders (attempts) per signal leg before giving up")
    poll_interval_ms: int = Field(200, ge=10, description="how often working orders are queried on the venue")
    # signals
    max_signal_age_ms: int = Field(5000, ge=1, description="a signal older than this (ts_emit) is stale -> dlq")
    market_wait_ms: int = Field(3000, ge=0, description="wait this long for market data before denying a signal")
    max_book_age_ms: int = Field(
        5000, ge=0, description="refuse aggressive (IOC) orders when the instrument's newest market data (ts_recv) is "
        "older than this; 0 = no limit (a stale or gapped book is always refused)",
    )
    max_inflight_signals: int = Field(200, ge=1, description="pause consuming signals while this many are in progress")
    signals_offset_reset: str = Field(
        "latest", description="where a new consumer group starts on `signals`: latest (skip history) or earliest"
    )
    # risk
    max_order_notional: Decimal = Field(Decimal(100000), description="largest order notional in quote units")
    max_position: Decimal = Field(Decimal(100), description="largest absolute position per instrument in base units")
    max_open_orders: int = Field(50, ge=1, description="most orders open on the venue at once")
    price_band_bps: Decimal = Field(Decimal(200), description="deny orders priced further than this (bps) from mid")
    rate_limit_fraction: float = Field(
        0.8, gt=0, le=1, description="use this fraction of the venue's ORDERS rate limits (exchangeInfo rateLimits)"
    )
    max_throttle_wait_ms: int = Field(2000, ge=0, description="deny an order whose rate-limit wait would exceed this")
    initial_state: str = Field("ACTIVE", description="trading state when no control message exists: ACTIVE/REDUCING/HALTED")
    # recovery
    settle_retry_ms: int = Field(200, ge=10, description="first backoff of a query settling an unknown order (doubles, capped 5 s)")
    recv_window_ms: int = Field(
        5000, ge=1, le=60_000,
        description="recvWindow sent with every order; an unknown order not found at the venue counts as never placed "
        "only once its timestamp + recvWindow has passed on the venue's clock",
    )
    reconcile_interval_ms: int = Field(
        10_000, ge=0, description="compare balances (from fills) and open orders with the venue's account this often; 0 = never"
    )
    reconcile_max_diff_quote: Decimal = Field(
        Decimal(10), ge=0, description="a balance difference worth more than this (quote units at mid), seen twice in a row, "
        "moves risk to reconcile_breach_state",
    )
    reconcile_breach_state: str = Field("REDUCING", description="trading state after a reconciliation breach: REDUCING or HALTED")
    clock_sync_interval_ms: int = Field(60_000, ge=1000, description="how often the venue's clock offset is measured")
    # kill switch
    control_key: str = Field(
        "tickpipe-control-key", description="HMAC key signing control messages (`tickpipe executor halt|resume`); "
        "set a secret one outside a laptop",
    )
    control_max_age_ms: int = Field(
        60_000, ge=1, description="a control message older than this when it arrives is rejected as a replay"
    )


class BacktestSettings(_Section):
    """`tickpipe backtest`: the archive replayed through the streams and executor code against simulated matching."""

    seed: int = Field(7, description="seed of the latency draws; the same archive, window, settings and seed give the same result")
    chunk_s: int = Field(60, ge=1, description="archive read per query: this many seconds of receive time")
    tick_to_signal_us: int = Field(
        5_000, ge=0, description="market data received -> signal emitted, when the archive has no live signals to calibrate on"
    )
    signal_to_order_us: int = Field(
        2_000, ge=0, description="signal emitted -> executor acts on it, when the archive has no live orders to calibrate on"
    )
    venue_round_trip_us: int = Field(
        2_000, ge=0, description="order sent -> venue answer received, when the archive has no live acknowledgements"
    )
    maker_fee: str = Field("0.001", description="fee rate of a simulated passive fill (of the base received by a buy, the quote by a sell)")
    taker_fee: str = Field("0.001", description="fee rate of a simulated aggressive fill (as the maker fee)")
    depth_levels: int = Field(50, ge=1, description="archived book levels the matching engine reads for queue position and sweeps")
    orders_per_10s: int = Field(100, ge=1, description="the simulated venue's ORDERS limit per 10 s (the risk engine's rate bucket; Binance spot: 100)")
    orders_per_day: int = Field(200_000, ge=1, description="the simulated venue's ORDERS limit per day (Binance spot: 200,000)")
    flush_rows: int = Field(20_000, ge=1, description="results (signals, orders, fills) written to the archive per insert")


class StackSettings(_Section):
    """The local stack under supervisord (`tickpipe up` / `down` / `status`)."""

    services: str = Field(
        "", description="comma-separated services `tickpipe up` starts; empty = every service whose command exists"
    )
    start_timeout_s: float = Field(120.0, gt=0, description="`tickpipe up` fails when a service is not healthy by then")
    stop_timeout_s: float = Field(30.0, gt=0, description="`tickpipe down` kills what is still alive after this")
    probe_timeout_s: float = Field(2.0, gt=0, description="timeout of one health probe (HTTP or Kafka metadata)")


class Settings(BaseSettings):
    """Every component's settings; env prefix ``TICKPIPE_``, nested delimiter ``__``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    home: Path = Field(Path(".tickpipe"), description="root of local state: logs, pids, data")
    log_level: str = Field("INFO", description="log level of every service")
    metrics_host: str = Field(
        "127.0.0.1",
        description="address every service's /metrics and /health bind to; 0.0.0.0 in a container so that "
        "Prometheus and the orchestrator's probes reach them",
    )
    gc_freeze: bool = Field(
        True,
        description="each service freezes its start-up objects out of the garbage collector's full passes "
        "(gc.freeze once start-up is done): shorter pauses on the hot path; off to compare",
    )
    kafka: KafkaSettings = KafkaSettings()
    broker: BrokerSettings = BrokerSettings()
    warehouse: WarehouseSettings = WarehouseSettings()
    sim: SimExchangeSettings = SimExchangeSettings()
    feed: FeedSettings = FeedSettings()
    streams: StreamsSettings = StreamsSettings()
    sink: SinkSettings = SinkSettings()
    executor: ExecutorSettings = ExecutorSettings()
    stack: StackSettings = StackSettings()
    backtest: BacktestSettings = BacktestSettings()
    clickhouse_url: str | None = Field(
        None, description="flat name of the ClickHouse URL (compose, k8s); when set it overrides TICKPIPE_WAREHOUSE__URL"
    )
    schema_registry_url: str | None = Field(
        None,
        description="flat name of the schema registry URL (compose, k8s); when set it overrides "
        "TICKPIPE_KAFKA__SCHEMA_REGISTRY_URL",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_design_names(cls, data: Any) -> Any:
        # The cluster manifests name these two flat; the nested sections stay the truth.
        if not isinstance(data, dict):
            return data
        for flat, (section, field) in {
            "clickhouse_url": ("warehouse", "url"),
            "schema_registry_url": ("kafka", "schema_registry_url"),
        }.items():
            if data.get(flat):
                current = data.get(section) or {}
                values = current.model_dump() if isinstance(current, BaseModel) else dict(current)
                data = {**data, section: {**values, field: data[flat]}}
        return data


class SettingsError(SystemExit):
    """Raised at start when the environment holds an unknown or invalid setting."""


def _known_env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.add(f"{ENV_PREFIX}{name}".upper())
            for sub in annotation.model_fields:
                names.add(f"{ENV_PREFIX}{name}__{sub}".upper())
        else:
            names.add(f"{ENV_PREFIX}{name}".upper())
    return names


def load_settings() -> Settings:
    """Load settings from the environment, refusing unknown or invalid ``TICKPIPE_*`` names."""
    unknown = sorted(
        k for k in os.environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in _known_env_names()
    )
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(unknown)}; see the settings table in README.md")
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            ENV_PREFIX + "__".join(str(p) for p in err["loc"]).upper() + f": {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid setting(s): {problems}") from None


def environ_without_settings() -> dict[str, str]:
    """Return this process's environment minus every ``TICKPIPE_*`` name.

    For a child process (test, benchmark) that must run with exactly the settings its starter adds,
    not with whatever the caller's shell happens to export.
    """
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(ENV_PREFIX)}
