-- Analyst views over the archive tables (applied by sinks/migrate.py after the tables).
-- Unqualified names resolve to the archive database (WarehouseSettings.database).
-- Materialized views see every insert into their source table exactly once: the sink skips
-- messages already archived (resume frontier) and retries a batch with the same
-- insert_deduplication_token, which the *_state tables honour (non_replicated_deduplication_window).
-- Plain views over the raw tables read FINAL so redelivered duplicates never show.

-- OHLCV from trades: 1 s / 1 m / 1 h. open/close = price of the first/last trade by
-- (ts_event, trade_id); volumes are exact Decimal sums.
CREATE TABLE IF NOT EXISTS ohlcv_1s_state
(
    venue LowCardinality(String),
    symbol LowCardinality(String),
    bucket DateTime('UTC'),
    open AggregateFunction(argMin, Decimal(38, 18), Tuple(DateTime64(9, 'UTC'), Int64)),
    high SimpleAggregateFunction(max, Decimal(38, 18)),
    low SimpleAggregateFunction(min, Decimal(38, 18)),
    close AggregateFunction(argMax, Decimal(38, 18), Tuple(DateTime64(9, 'UTC'), Int64)),
    volume SimpleAggregateFunction(sum, Decimal(38, 18)),
    buy_volume SimpleAggregateFunction(sum, Decimal(38, 18)),
    quote_volume SimpleAggregateFunction(sum, Decimal(76, 36)),
    trades SimpleAggregateFunction(sum, UInt64),
    first_trade_id SimpleAggregateFunction(min, Int64),
    last_trade_id SimpleAggregateFunction(max, Int64)
)
ENGINE = AggregatingMergeTree
ORDER BY (venue, symbol, bucket)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS ohlcv_1m_state AS ohlcv_1s_state;
CREATE TABLE IF NOT EXISTS ohlcv_1h_state AS ohlcv_1s_state;

CREATE MATERIALIZED VIEW IF NOT EXISTS ohlcv_1s_mv TO ohlcv_1s_state AS
SELECT
    venue, symbol, toDateTime(toStartOfInterval(ts_event, INTERVAL 1 SECOND), 'UTC') AS bucket,
    argMinState(price, (ts_event, trade_id)) AS open, max(price) AS high, min(price) AS low,
    argMaxState(price, (ts_event, trade_id)) AS close, sum(qty) AS volume,
    sumIf(qty, side = 'buy') AS buy_volume, sum(toDecimal256(price, 18) * qty) AS quote_volume,
    toUInt64(count()) AS trades, min(trade_id) AS first_trade_id, max(trade_id) AS last_trade_id
FROM md_trades
GROUP BY venue, symbol, bucket;

-- 1 m rolls up the 1 s states as they are inserted, and 1 h the 1 m states (a chain: each trade
-- is aggregated once, not three times; measured 2.6-3.9 -> 1.8-2.9 us of warehouse CPU per trade
-- with the hop-latency view). Merging the states is exact: argMin/argMax keep their
-- (ts_event, trade_id) keys, the sums are Decimal. migrate.py rewires an older archive whose
-- views still read md_trades (ALTER ... MODIFY QUERY: atomic, no insert missed or counted twice).
CREATE MATERIALIZED VIEW IF NOT EXISTS ohlcv_1m_mv TO ohlcv_1m_state AS
SELECT
    s.venue AS venue, s.symbol AS symbol, toDateTime(toStartOfInterval(s.bucket, INTERVAL 1 MINUTE), 'UTC') AS bucket,
    argMinMergeState(s.open) AS open, max(s.high) AS high, min(s.low) AS low, argMaxMergeState(s.close) AS close,
    sum(s.volume) AS volume, sum(s.buy_volume) AS buy_volume, sum(s.quote_volume) AS quote_volume,
    sum(s.trades) AS trades, min(s.first_trade_id) AS first_trade_id, max(s.last_trade_id) AS last_trade_id
FROM ohlcv_1s_state AS s
GROUP BY venue, symbol, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS ohlcv_1h_mv TO ohlcv_1h_state AS
SELECT
    s.venue AS venue, s.symbol AS symbol, toDateTime(toStartOfInterval(s.bucket, INTERVAL 1 HOUR), 'UTC') AS bucket,
    argMinMergeState(s.open) AS open, max(s.high) AS high, min(s.low) AS low, argMaxMergeState(s.close) AS close,
    sum(s.volume) AS volume, sum(s.buy_volume) AS buy_volume, sum(s.quote_volume) AS quote_volume,
    sum(s.trades) AS trades, min(s.first_trade_id) AS first_trade_id, max(s.last_trade_id) AS last_trade_id
FROM ohlcv_1m_state AS s
GROUP BY venue, symbol, bucket;

CREATE OR REPLACE VIEW ohlcv_1s AS
SELECT
    venue, symbol, bucket, open, high, low, close, volume, buy_volume, toDecimal128(qv, 18) AS quote_volume,
    if(volume = 0, NULL, toDecimal128(qv / volume, 18)) AS vwap, trades, first_trade_id, last_trade_id
FROM
(
    SELECT
        s.venue AS venue, s.symbol AS symbol, s.bucket AS bucket, argMinMerge(s.open) AS open,
        max(s.high) AS high, min(s.low) AS low, argMaxMerge(s.close) AS close, sum(s.volume) AS volume,
        sum(s.buy_volume) AS buy_volume, sum(s.quote_volume) AS qv, sum(s.trades) AS trades,
        min(s.first_trade_id) AS first_trade_id, max(s.last_trade_id) AS last_trade_id
    FROM ohlcv_1s_state AS s
    GROUP BY s.venue, s.symbol, s.bucket
);

CREATE OR REPLACE VIEW ohlcv_1m AS
SELECT
    venue, symbol, bucket, open, high, low, close, volume, buy_volume, toDecimal128(qv, 18) AS quote_volume,
    if(volume = 0, NULL, toDecimal128(qv / volume, 18)) AS vwap, trades, first_trade_id, last_trade_id
FROM
(
    SELECT
        s.venue AS venue, s.symbol AS symbol, s.bucket AS bucket, argMinMerge(s.open) AS open,
        max(s.high) AS high, min(s.low) AS low, argMaxMerge(s.close) AS close, sum(s.volume) AS volume,
        sum(s.buy_volume) AS buy_volume, sum(s.quote_volume) AS qv, sum(s.trades) AS trades,
        min(s.first_trade_id) AS first_trade_id, max(s.last_trade_id) AS last_trade_id
    FROM ohlcv_1m_state AS s
    GROUP BY s.venue, s.symbol, s.bucket
);

CREATE OR REPLACE VIEW ohlcv_1h AS
SELECT
    venue, symbol, bucket, open, high, low, close, volume, buy_volume, toDecimal128(qv, 18) AS quote_volume,
    if(volume = 0, NULL, toDecimal128(qv / volume, 18)) AS vwap, trades, first_trade_id, last_trade_id
FROM
(
    SELECT
        s.venue AS venue, s.symbol AS symbol, s.bucket AS bucket, argMinMerge(s.open) AS open,
        max(s.high) AS high, min(s.low) AS low, argMaxMerge(s.close) AS close, sum(s.volume) AS volume,
        sum(s.buy_volume) AS buy_volume, sum(s.quote_volume) AS qv, sum(s.trades) AS trades,
        min(s.first_trade_id) AS first_trade_id, max(s.last_trade_id) AS last_trade_id
    FROM ohlcv_1h_state AS s
    GROUP BY s.venue, s.symbol, s.bucket
);

-- Per-second top of book from BBO: last bid/ask of the second, mid, spread and its range.
CREATE TABLE IF NOT EXISTS bbo_1s_state
(
    venue LowCardinality(String),
    symbol LowCardinality(String),
    bucket DateTime('UTC'),
    bid AggregateFunction(argMax, Decimal(38, 18), Tuple(DateTime64(9, 'UTC'), Int64)),
    ask AggregateFunction(argMax, Decimal(38, 18), Tuple(DateTime64(9, 'UTC'), Int64)),
    spread_min SimpleAggregateFunction(min, Decimal(38, 18)),
    spread_max SimpleAggregateFunction(max, Decimal(38, 18)),
    spread_sum SimpleAggregateFunction(sum, Decimal(38, 18)),
    updates SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (venue, symbol, bucket)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS bbo_1s_mv TO bbo_1s_state AS
SELECT
    venue, symbol, toDateTime(toStartOfInterval(ts_event, INTERVAL 1 SECOND), 'UTC') AS bucket,
    argMaxState(bid_price, (ts_event, update_id)) AS bid, argMaxState(ask_price, (ts_event, update_id)) AS ask,
    min(ask_price - bid_price) AS spread_min, max(ask_price - bid_price) AS spread_max,
    sum(ask_price - bid_price) AS spread_sum, toUInt64(count()) AS updates
FROM md_bbo
GROUP BY venue, symbol, bucket;

CREATE OR REPLACE VIEW bbo_1s AS
SELECT
    venue, symbol, bucket, bid, ask, (bid + ask) / 2 AS mid, ask - bid AS spread,
    if(bid + ask = 0, NULL, toFloat64(ask - bid) / toFloat64((bid + ask) / 2) * 10000) AS spread_bps,
    spread_min, spread_max, toDecimal128(spread_sum / updates, 18) AS spread_avg, updates
FROM
(
    SELECT
        s.venue AS venue, s.symbol AS symbol, s.bucket AS bucket, argMaxMerge(s.bid) AS bid,
        argMaxMerge(s.ask) AS ask, min(s.spread_min) AS spread_min, max(s.spread_max) AS spread_max,
        sum(s.spread_sum) AS spread_sum, sum(s.updates) AS updates
    FROM bbo_1s_state AS s
    GROUP BY s.venue, s.symbol, s.bucket
);

-- Instruments across venues: each venue's own symbol (BTCUSDT, BTC/USD, BTC-USD) with its base and
-- quote asset, price tick and quantity lot, as the feeds last received them (md.instruments). Join
-- venues on (base, quote); assets are named as each venue names them.
CREATE OR REPLACE VIEW instruments AS
SELECT
    venue, symbol,
    argMax(base, ts_recv) AS base, argMax(quote, ts_recv) AS quote,
    argMax(tick_size, ts_recv) AS tick_size, argMax(lot_size, ts_recv) AS lot_size,
    max(ts_recv) AS updated_at
FROM md_instruments FINAL
GROUP BY venue, symbol;

-- Feed-gap intervals from md.health: every "down" event (disconnect, gap, stale, stalled, crossed,
-- dropped) until the next "up" event (connect, resync, recovered) of the same venue and symbol
-- (symbol '' = the whole connection). gap_end is NULL while the gap is still open.
CREATE OR REPLACE VIEW feed_gaps AS
SELECT
    venue, symbol, connection_id, kind, detail, first_update_id, last_update_id,
    ts_event AS gap_start, gap_end,
    if(gap_end IS NULL, NULL, toUnixTimestamp64Nano(gap_end) - toUnixTimestamp64Nano(ts_event)) AS duration_ns
FROM
(
    SELECT
        *,
        min(if(kind IN ('connect', 'resync', 'recovered'), ts_event, NULL)) OVER (
            PARTITION BY venue, symbol ORDER BY ts_event, _partition, _offset
            ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
        ) AS gap_end
    FROM md_health FINAL
)
WHERE kind IN ('disconnect', 'gap', 'stale', 'stalled', 'crossed', 'dropped');

-- Per-hop latency of the live pipeline, one row per record: hop, source table, the record's time and the latency
-- (ns). A backtest's records (backtest_id <> '') are left out: their stamps are drawn from this view.
--   event->recv   venue event time to local receive (market data)
--   recv->emit    local receive of the newest input to the stage's emit (features, bars, signals, orders, fills)
--   signal->order a signal's emit to the first event of an order it caused
--   order->fill   an order's first event to the executor's emit of each fill
CREATE OR REPLACE VIEW hop_latency AS
SELECT 'event->recv' AS hop, 'md_trades' AS source, venue, symbol, ts_recv AS ts,
       toUnixTimestamp64Nano(ts_recv) - toUnixTimestamp64Nano(ts_event) AS latency_ns FROM md_trades FINAL
UNION ALL
SELECT 'event->recv', 'md_bbo', venue, symbol, ts_recv,
       toUnixTimestamp64Nano(ts_recv) - toUnixTimestamp64Nano(ts_event) FROM md_bbo FINAL
UNION ALL
SELECT 'event->recv', 'md_book', venue, symbol, ts_recv,
       toUnixTimestamp64Nano(ts_recv) - toUnixTimestamp64Nano(ts_event) FROM md_book FINAL
UNION ALL
SELECT 'recv->emit', 'features_book', venue, symbol, ts_emit,
       toUnixTimestamp64Nano(ts_emit) - toUnixTimestamp64Nano(ts_recv) FROM features_book FINAL
UNION ALL
SELECT 'recv->emit', 'features_flow', venue, symbol, ts_emit,
       toUnixTimestamp64Nano(ts_emit) - toUnixTimestamp64Nano(ts_recv) FROM features_flow FINAL
UNION ALL
SELECT 'recv->emit', 'signals', venue, symbol, ts_emit,
       toUnixTimestamp64Nano(ts_emit) - toUnixTimestamp64Nano(ts_recv) FROM signals FINAL WHERE backtest_id = ''
UNION ALL
SELECT 'recv->emit', 'orders', venue, symbol, ts_emit,
       toUnixTimestamp64Nano(ts_emit) - toUnixTimestamp64Nano(ts_recv) FROM orders FINAL WHERE seq = 0 AND backtest_id = ''
UNION ALL
SELECT 'recv->emit', 'fills', venue, symbol, ts_emit,
       toUnixTimestamp64Nano(ts_emit) - toUnixTimestamp64Nano(ts_recv) FROM fills FINAL WHERE backtest_id = ''
UNION ALL
SELECT 'signal->order', 'orders', o.venue, o.symbol, o.ts_emit,
       toUnixTimestamp64Nano(o.ts_emit) - toUnixTimestamp64Nano(s.ts_emit)
FROM (SELECT * FROM orders FINAL WHERE seq = 0 AND backtest_id = '') AS o
INNER JOIN (SELECT signal_id, ts_emit FROM signals FINAL WHERE backtest_id = '') AS s ON o.signal_id = s.signal_id
UNION ALL
SELECT 'order->fill', 'fills', f.venue, f.symbol, f.ts_emit,
       toUnixTimestamp64Nano(f.ts_emit) - toUnixTimestamp64Nano(o.ts_emit)
FROM (SELECT * FROM fills FINAL WHERE backtest_id = '') AS f
INNER JOIN (SELECT client_order_id, ts_emit FROM orders FINAL WHERE seq = 0 AND backtest_id = '') AS o
    ON f.client_order_id = o.client_order_id;

-- The hot path hop by hop, one row per order the venue acknowledged (its `new` event), joined with
-- the signal behind it by signal_id. Every stamp is carried by the records themselves:
--   signal.ts_event     venue event time of the market data behind the signal
--   signal.ts_recv      the feed received it
--   signal.ts_md_ack    the broker appended it (Kafka LogAppendTime of the md record, 1 ms resolution)
--   signal.ts_in        the streams worker took it
--   signal.ts_emit      the signal was emitted
--   order.ts_signal_ack the broker appended the signal (LogAppendTime, 1 ms resolution)
--   order.ts_in         the executor took the signal
--   order.ts_sent       the order request left for the venue
--   order.ts_event      the venue's acknowledgement time (transactTime, 1 ms resolution)
--   order.ts_recv       the executor received the acknowledgement
-- Hops across a millisecond stamp may read up to 1 ms short or long (even below zero) per record.
-- first_order = 1 marks the signal's first order: tick_to_order_sent of later orders includes the
-- policy's own waits (passive time before crossing).
CREATE OR REPLACE VIEW order_latency AS
SELECT
    o.venue AS venue, o.symbol AS symbol, o.signal_id AS signal_id, o.client_order_id AS client_order_id,
    o.ts_sent AS ts_sent,
    o.ts_sent = min(o.ts_sent) OVER (PARTITION BY o.signal_id) AS first_order,
    toUnixTimestamp64Nano(s.ts_recv) - toUnixTimestamp64Nano(s.ts_event) AS venue_to_feed_ns,
    toUnixTimestamp64Nano(s.ts_md_ack) - toUnixTimestamp64Nano(s.ts_recv) AS feed_to_md_ack_ns,
    toUnixTimestamp64Nano(s.ts_in) - toUnixTimestamp64Nano(s.ts_md_ack) AS md_ack_to_streams_ns,
    toUnixTimestamp64Nano(s.ts_emit) - toUnixTimestamp64Nano(s.ts_in) AS streams_to_signal_ns,
    toUnixTimestamp64Nano(o.ts_signal_ack) - toUnixTimestamp64Nano(s.ts_emit) AS signal_to_signal_ack_ns,
    toUnixTimestamp64Nano(o.ts_in) - toUnixTimestamp64Nano(o.ts_signal_ack) AS signal_ack_to_executor_ns,
    toUnixTimestamp64Nano(o.ts_sent) - toUnixTimestamp64Nano(o.ts_in) AS executor_to_order_sent_ns,
    toUnixTimestamp64Nano(o.ts_event) - toUnixTimestamp64Nano(o.ts_sent) AS order_sent_to_venue_ack_ns,
    toUnixTimestamp64Nano(o.ts_recv) - toUnixTimestamp64Nano(o.ts_sent) AS order_round_trip_ns,
    toUnixTimestamp64Nano(s.ts_emit) - toUnixTimestamp64Nano(s.ts_recv) AS tick_to_signal_ns,
    toUnixTimestamp64Nano(o.ts_sent) - toUnixTimestamp64Nano(s.ts_recv) AS tick_to_order_sent_ns,
    toUnixTimestamp64Nano(o.ts_recv) - toUnixTimestamp64Nano(s.ts_recv) AS tick_to_venue_ack_ns
FROM (SELECT * FROM orders FINAL WHERE status = 'new' AND ts_sent IS NOT NULL AND backtest_id = '') AS o
INNER JOIN (SELECT * FROM signals FINAL WHERE backtest_id = '') AS s ON o.signal_id = s.signal_id;

-- Per-minute latency summary per hop, maintained at insert time for the single-table hops.
CREATE TABLE IF NOT EXISTS hop_latency_1m_state
(
    hop LowCardinality(String),
    source LowCardinality(String),
    venue LowCardinality(String),
    symbol LowCardinality(String),
    bucket DateTime('UTC'),
    records SimpleAggregateFunction(sum, UInt64),
    total_ns SimpleAggregateFunction(sum, Int64),
    min_ns SimpleAggregateFunction(min, Int64),
    max_ns SimpleAggregateFunction(max, Int64),
    quantiles AggregateFunction(quantilesTDigest(0.5, 0.9, 0.99), Int64)
)
ENGINE = AggregatingMergeTree
ORDER BY (hop, source, venue, symbol, bucket)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS hop_latency_md_trades_mv TO hop_latency_1m_state AS
SELECT 'event->recv' AS hop, 'md_trades' AS source, venue, symbol,
       toDateTime(toStartOfInterval(ts_recv, INTERVAL 1 MINUTE), 'UTC') AS bucket,
       toUInt64(count()) AS records, sum(lat) AS total_ns, min(lat) AS min_ns, max(lat) AS max_ns,
       quantilesTDigestState(0.5, 0.9, 0.99)(lat) AS quantiles
FROM (SELECT *, toUnixTimestamp64Nano(ts_recv) - toUnixTimestamp64Nano(ts_event) AS lat FROM md_trades)
GROUP BY venue, symbol, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS hop_latency_md_bbo_mv TO hop_latency_1m_state AS
SELECT 'event->recv' AS hop, 'md_bbo' AS source, venue, symbol,
       toDateTime(toStartOfInterval(ts_recv, INTERVAL 1 MINUTE), 'UTC') AS bucket,
       toUInt64(count()) AS records, sum(lat) AS total_ns, min(lat) AS min_ns, max(lat) AS max_ns,
       quantilesTDigestState(0.5, 0.9, 0.99)(lat) AS quantiles
FROM (SELECT *, toUnixTimestamp64Nano(ts_recv) - toUnixTimestamp64Nano(ts_event) AS lat FROM md_bbo)
GROUP BY venue, symbol, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS hop_latency_features_book_mv TO hop_latency_1m_state AS
SELECT 'recv->emit' AS hop, 'features_book' AS source, venue, symbol,
       toDateTime(toStartOfInterval(ts_emit, INTERVAL 1 MINUTE), 'UTC') AS bucket,
       toUInt64(count()) AS records, sum(lat) AS total_ns, min(lat) AS min_ns, max(lat) AS max_ns,
       quantilesTDigestState(0.5, 0.9, 0.99)(lat) AS quantiles
FROM (SELECT *, toUnixTimestamp64Nano(ts_emit) - toUnixTimestamp64Nano(ts_recv) AS lat FROM features_book)
GROUP BY venue, symbol, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS hop_latency_signals_mv TO hop_latency_1m_state AS
SELECT 'recv->emit' AS hop, 'signals' AS source, venue, symbol,
       toDateTime(toStartOfInterval(ts_emit, INTERVAL 1 MINUTE), 'UTC') AS bucket,
       toUInt64(count()) AS records, sum(lat) AS total_ns, min(lat) AS min_ns, max(lat) AS max_ns,
       quantilesTDigestState(0.5, 0.9, 0.99)(lat) AS quantiles
FROM (SELECT *, toUnixTimestamp64Nano(ts_emit) - toUnixTimestamp64Nano(ts_recv) AS lat FROM signals
      WHERE backtest_id = '')
GROUP BY venue, symbol, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS hop_latency_fills_mv TO hop_latency_1m_state AS
SELECT 'recv->emit' AS hop, 'fills' AS source, venue, symbol,
       toDateTime(toStartOfInterval(ts_emit, INTERVAL 1 MINUTE), 'UTC') AS bucket,
       toUInt64(count()) AS records, sum(lat) AS total_ns, min(lat) AS min_ns, max(lat) AS max_ns,
       quantilesTDigestState(0.5, 0.9, 0.99)(lat) AS quantiles
FROM (SELECT *, toUnixTimestamp64Nano(ts_emit) - toUnixTimestamp64Nano(ts_recv) AS lat FROM fills
      WHERE backtest_id = '')
GROUP BY venue, symbol, bucket;

CREATE OR REPLACE VIEW hop_latency_1m AS
SELECT
    s.hop AS hop, s.source AS source, s.venue AS venue, s.symbol AS symbol, s.bucket AS bucket,
    sum(s.records) AS records, sum(s.total_ns) / sum(s.records) AS mean_ns, min(s.min_ns) AS min_ns,
    max(s.max_ns) AS max_ns, quantilesTDigestMerge(0.5, 0.9, 0.99)(s.quantiles) AS p50_p90_p99_ns
FROM hop_latency_1m_state AS s
GROUP BY s.hop, s.source, s.venue, s.symbol, s.bucket;

-- Execution quality (orders, fills and PnL against the market archived beside them).
-- Exact arithmetic: sums of prices and sizes stay Decimal(38, 18), products are taken in
-- Decimal(76, 36) (toDecimal256 before multiplying, exact), and every ratio (average price, bps,
-- shares) is the exact quotient cut toward zero at 18 places (how ClickHouse divides decimals).
-- Records that can reach the archive twice count once by their idempotency key, so these views need
-- no FINAL: a fill re-published by a replay (venue, symbol, trade_id), a signal re-emitted after a
-- crash (signal_id: its first emission), an order event ((client_order_id, seq): identical copies).
-- Keys: signals, orders and fills join on backtest_id and signal_id / client_order_id / trade_id and PnL runs
-- per (backtest_id, model, venue, symbol): a backtest's records (`tickpipe backtest`, backtest_id <> '') never
-- mix with the live ones ('') or another backtest's; filter on backtest_id to read one of them. The market
-- side (BBOs, cross-venue records) joins on instrument and time only: live and backtest share one market.

-- Venue mid by receive time: per (venue, symbol, ts_recv) the BBO received then (the highest update_id
-- when several share the nanosecond); mid = (bid + ask) / 2. "The mid at T" is the row with the
-- latest ts_recv <= T (ASOF JOIN on ts_recv): what the pipeline knew at T, on our clock.
CREATE OR REPLACE VIEW bbo_mid AS
SELECT venue, symbol, ts_recv, bid, ask, (bid + ask) / 2 AS mid
FROM
(
    SELECT venue, symbol, ts_recv, argMax(bid_price, update_id) AS bid, argMax(ask_price, update_id) AS ask
    FROM md_bbo
    GROUP BY venue, symbol, ts_recv
);

-- One row per trade of ours (a Fill re-published by a replay counts once: its first emission), with
-- the model of the signal behind it and the fee in quote units: as charged when the fee asset is the
-- instrument's quote, times the fill price when it is the base, NULL when neither (e.g. BNB) or the
-- instrument is unknown (base and quote from `instruments`).
CREATE OR REPLACE VIEW fills_unique AS
SELECT
    f.backtest_id AS backtest_id, f.venue AS venue, f.symbol AS symbol, f.trade_id AS trade_id,
    f.client_order_id AS client_order_id, f.venue_order_id AS venue_order_id, f.signal_id AS signal_id,
    s.model AS model, f.side AS side,
    f.price AS price, f.qty AS qty, f.fee AS fee, f.fee_asset AS fee_asset,
    multiIf(i.quote != '' AND f.fee_asset = i.quote, toDecimal256(f.fee, 36),
            i.base != '' AND f.fee_asset = i.base, toDecimal256(f.fee, 18) * f.price,
            NULL) AS fee_quote,
    f.liquidity AS liquidity, f.account AS account, f.ts_event AS ts_event, f.ts_recv AS ts_recv,
    f.ts_emit AS ts_emit
FROM
(
    SELECT * FROM fills ORDER BY backtest_id, venue, symbol, trade_id, ts_emit, _offset
    LIMIT 1 BY backtest_id, venue, symbol, trade_id
) AS f
LEFT JOIN
(
    SELECT backtest_id, signal_id, model FROM signals ORDER BY backtest_id, signal_id, ts_emit
    LIMIT 1 BY backtest_id, signal_id
) AS s ON f.backtest_id = s.backtest_id AND f.signal_id = s.signal_id
LEFT JOIN instruments AS i ON f.venue = i.venue AND f.symbol = i.symbol;

-- Per fill: the venue mid at the fill (its venue time ts_event) and 1, 10 and 60 s later, from the BBOs
-- received by then (bbo_mid; venue and local clocks differ by milliseconds), and the markout at each
-- horizon in bps: side * (mid - price) / price * 10000 (side +1 buy, -1 sell; above 0 = the market
-- moved our way after the trade). A mark is NULL while the archive holds no BBO of the instrument at
-- or after its time (the horizon is not archived yet) or none before it.
CREATE OR REPLACE VIEW execution_fills AS
SELECT
    f.backtest_id AS backtest_id, f.venue AS venue, f.symbol AS symbol, f.model AS model, f.signal_id AS signal_id,
    f.client_order_id AS client_order_id, f.trade_id AS trade_id, f.side AS side, f.price AS price, f.qty AS qty,
    f.liquidity AS liquidity, f.fee AS fee, f.fee_asset AS fee_asset, f.fee_quote AS fee_quote,
    f.ts_event AS ts_event,
    m.mid_0s AS mid_at_fill, m.mid_1s AS mid_1s, m.mid_10s AS mid_10s, m.mid_60s AS mid_60s,
    toDecimal128(if(f.side = 'buy', 1, -1) * (toDecimal256(m.mid_1s, 18) - f.price) * 10000 / f.price, 18)
        AS markout_1s_bps,
    toDecimal128(if(f.side = 'buy', 1, -1) * (toDecimal256(m.mid_10s, 18) - f.price) * 10000 / f.price, 18)
        AS markout_10s_bps,
    toDecimal128(if(f.side = 'buy', 1, -1) * (toDecimal256(m.mid_60s, 18) - f.price) * 10000 / f.price, 18)
        AS markout_60s_bps
FROM fills_unique AS f
LEFT JOIN
(
    SELECT backtest_id, venue, symbol, trade_id,
           anyIf(mid, h = 0) AS mid_0s, anyIf(mid, h = 1) AS mid_1s, anyIf(mid, h = 10) AS mid_10s,
           anyIf(mid, h = 60) AS mid_60s
    FROM
    (
        SELECT x.backtest_id AS backtest_id, x.venue AS venue, x.symbol AS symbol, x.trade_id AS trade_id, x.h AS h,
               if(b.found AND x.at_ns <= e.last_ns, b.mid, NULL) AS mid
        FROM
        (
            SELECT backtest_id, venue, symbol, trade_id, arrayJoin([0, 1, 10, 60]) AS h,
                   toUnixTimestamp64Nano(ts_event) + toInt64(h) * 1000000000 AS at_ns
            FROM fills
        ) AS x
        ASOF LEFT JOIN
        (
            SELECT venue, symbol, toUnixTimestamp64Nano(ts_recv) AS ns, mid, true AS found
            FROM bbo_mid WHERE (venue, symbol) IN (SELECT venue, symbol FROM fills)
        ) AS b ON x.venue = b.venue AND x.symbol = b.symbol AND x.at_ns >= b.ns
        LEFT JOIN
        (
            SELECT venue, symbol, toUnixTimestamp64Nano(max(ts_recv)) AS last_ns FROM md_bbo GROUP BY venue, symbol
        ) AS e ON x.venue = e.venue AND x.symbol = e.symbol
    )
    GROUP BY backtest_id, venue, symbol, trade_id
) AS m ON f.backtest_id = m.backtest_id AND f.venue = m.venue AND f.symbol = m.symbol AND f.trade_id = m.trade_id;

-- Per order, against the market when its signal was emitted (the arrival, signal ts_emit):
--   arrival_mid        the venue mid then (bbo_mid; arrival_bbo_ts = the receive time of that BBO)
--   arrival_cross_mid  the consolidated mid of the pair across venues then (features.cross by ts_recv)
--   reference_price    the price the model saw (the signal's)
--   avg_fill_price     sum(price * qty) / sum(qty) over the order's fills
--   slippage_*_bps     side * (avg_fill_price - benchmark) / benchmark * 10000: above 0 = paid more than the
--                      benchmark (buy) or sold below it (sell), i.e. a cost
--   fees_quote         the fills' fees in quote (NULL when one of them is in neither base nor quote)
--   first/last_fill_ns from the order's first event (the executor created it) to its first/last
--                      execution (the fills' venue time)
--   passive            posted as LIMIT_MAKER (the executor's passive quotes; aggressive orders are LIMIT IOC)
--   passive_qty, aggressive_qty, passive_share  filled as maker / taker, maker share of the filled qty
--   fill_ratio         filled_qty / qty
CREATE OR REPLACE VIEW execution_orders AS
SELECT
    o.backtest_id AS backtest_id, o.venue AS venue, o.symbol AS symbol, s.model AS model, o.signal_id AS signal_id,
    o.client_order_id AS client_order_id, o.side AS side, o.order_type AS order_type,
    o.time_in_force AS time_in_force, toBool(o.order_type = 'LIMIT_MAKER') AS passive, o.price AS limit_price,
    o.qty AS qty, o.status AS status, o.created_at AS created_at,
    s.ts_emit AS signal_ts, s.reference_price AS reference_price,
    a.mid AS arrival_mid, a.bbo_ts AS arrival_bbo_ts, c.mid AS arrival_cross_mid,
    x.fills AS fills, x.filled_qty AS filled_qty, x.notional AS notional, x.avg_price AS avg_fill_price,
    toDecimal128(if(o.side = 'buy', 1, -1) * (toDecimal256(x.avg_price, 18) - a.mid) * 10000 / a.mid, 18)
        AS slippage_arrival_bps,
    toDecimal128(if(o.side = 'buy', 1, -1) * (toDecimal256(x.avg_price, 18) - c.mid) * 10000 / c.mid, 18)
        AS slippage_cross_bps,
    toDecimal128(if(o.side = 'buy', 1, -1) * (toDecimal256(x.avg_price, 18) - s.reference_price) * 10000
                 / s.reference_price, 18) AS slippage_reference_bps,
    x.fees_quote AS fees_quote,
    toUnixTimestamp64Nano(x.first_fill_at) - toUnixTimestamp64Nano(o.created_at) AS first_fill_ns,
    toUnixTimestamp64Nano(x.last_fill_at) - toUnixTimestamp64Nano(o.created_at) AS last_fill_ns,
    x.passive_qty AS passive_qty, x.aggressive_qty AS aggressive_qty,
    toDecimal128(toDecimal256(x.passive_qty, 18) / x.filled_qty, 18) AS passive_share,
    toDecimal128(toDecimal256(ifNull(x.filled_qty, 0), 18) / o.qty, 18) AS fill_ratio
FROM
(
    SELECT backtest_id, client_order_id, any(signal_id) AS signal_id, any(venue) AS venue, any(symbol) AS symbol,
           any(side) AS side, argMin(order_type, seq) AS order_type, argMin(time_in_force, seq) AS time_in_force,
           argMin(price, seq) AS price, argMin(qty, seq) AS qty, argMax(status, seq) AS status,
           min(ts_emit) AS created_at
    FROM orders
    GROUP BY backtest_id, client_order_id
) AS o
LEFT JOIN
(
    SELECT backtest_id, signal_id, model, ts_emit, reference_price
    FROM signals ORDER BY backtest_id, signal_id, ts_emit LIMIT 1 BY backtest_id, signal_id
) AS s ON o.backtest_id = s.backtest_id AND o.signal_id = s.signal_id
LEFT JOIN
(
    SELECT backtest_id, client_order_id, toNullable(count()) AS fills, toNullable(sum(qty)) AS filled_qty,
           toNullable(sum(toDecimal256(price, 18) * qty)) AS notional,
           toNullable(toDecimal128(sum(toDecimal256(price, 18) * qty) / sum(qty), 18)) AS avg_price,
           if(countIf(fee_quote IS NULL) > 0, NULL, sum(fee_quote)) AS fees_quote,
           toNullable(sumIf(qty, liquidity = 'maker')) AS passive_qty,
           toNullable(sumIf(qty, liquidity != 'maker')) AS aggressive_qty,
           toNullable(min(ts_event)) AS first_fill_at, toNullable(max(ts_event)) AS last_fill_at
    FROM fills_unique
    GROUP BY backtest_id, client_order_id
) AS x ON o.backtest_id = x.backtest_id AND o.client_order_id = x.client_order_id
LEFT JOIN
(
    SELECT q.backtest_id AS backtest_id, q.signal_id AS signal_id, if(b.found, b.mid, NULL) AS mid,
           if(b.found, b.ts_recv, NULL) AS bbo_ts
    FROM
    (
        SELECT backtest_id, signal_id, venue, symbol, toUnixTimestamp64Nano(min(ts_emit)) AS at_ns
        FROM signals GROUP BY backtest_id, signal_id, venue, symbol
    ) AS q
    ASOF LEFT JOIN
    (
        SELECT venue, symbol, ts_recv, toUnixTimestamp64Nano(ts_recv) AS ns, mid, true AS found
        FROM bbo_mid WHERE (venue, symbol) IN (SELECT venue, symbol FROM signals)
    ) AS b ON q.venue = b.venue AND q.symbol = b.symbol AND q.at_ns >= b.ns
) AS a ON o.backtest_id = a.backtest_id AND o.signal_id = a.signal_id
LEFT JOIN
(
    SELECT q.backtest_id AS backtest_id, q.signal_id AS signal_id, if(cv.found, cv.mid, NULL) AS mid
    FROM
    (
        SELECT g.backtest_id AS backtest_id, g.signal_id AS signal_id, concat(i.base, '/', i.quote) AS pair,
               g.at_ns AS at_ns
        FROM
        (
            SELECT backtest_id, signal_id, venue, symbol, toUnixTimestamp64Nano(min(ts_emit)) AS at_ns
            FROM signals GROUP BY backtest_id, signal_id, venue, symbol
        ) AS g
        INNER JOIN instruments AS i ON g.venue = i.venue AND g.symbol = i.symbol
    ) AS q
    ASOF LEFT JOIN
    (
        SELECT symbol AS pair, toUnixTimestamp64Nano(ts_recv) AS ns,
               argMax(mid, (ts_emit, source_partition, source_offset)) AS mid, true AS found
        FROM features_cross
        GROUP BY symbol, ts_recv
    ) AS cv ON q.pair = cv.pair AND q.at_ns >= cv.ns
) AS c ON o.backtest_id = c.backtest_id AND o.signal_id = c.signal_id;

-- PnL per backtest_id, model and instrument over time: one row per fill in trade order (ts_event, trade_id), the
-- state after it, in quote units, net of the fees so far (fees_quote; unpriced_fees counts the fills
-- whose fee is in neither base nor quote and so is left out):
--   position      bought - sold (base; fees charged in base are counted in fees_quote instead)
--   cash          proceeds of the sales - cost of the purchases
--   realised_pnl  first in, first out: the k-th unit bought closes against the k-th unit sold, whichever
--                 came first, so after the fill it is (proceeds - cost) of the first min(bought, sold)
--                 units of each side, minus fees_quote (exact: no average price is ever divided out)
--   mtm_pnl       cash + position * the venue mid at the fill (execution_fills.mid_at_fill) - fees_quote;
--                 NULL without a mid. mtm_pnl - realised_pnl is the open position at mid against its cost
CREATE OR REPLACE VIEW execution_pnl AS
WITH ladder AS
(
    SELECT backtest_id, model, venue, symbol, trade_id, ts_event, side, price, qty,
           sum(qty * (side = 'buy')) OVER w AS bought,
           sum(qty * (side = 'sell')) OVER w AS sold,
           sum(toDecimal256(price, 18) * qty * (side = 'buy')) OVER w AS bought_quote,
           sum(toDecimal256(price, 18) * qty * (side = 'sell')) OVER w AS sold_quote,
           sum(ifNull(fee_quote, toDecimal256(0, 36))) OVER w AS fees_quote,
           sum(toUInt64(fee_quote IS NULL)) OVER w AS unpriced_fees
    FROM fills_unique
    WINDOW w AS (PARTITION BY backtest_id, model, venue, symbol ORDER BY ts_event, trade_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT
    r.backtest_id AS backtest_id, r.model AS model, r.venue AS venue, r.symbol AS symbol, r.ts_event AS ts_event, r.trade_id AS trade_id,
    r.side AS side, r.price AS price, r.qty AS qty, r.bought - r.sold AS position,
    r.sold_quote - r.bought_quote AS cash, r.fees_quote AS fees_quote, r.unpriced_fees AS unpriced_fees,
    m.mid_at_fill AS mid,
    (sb.quote_before + toDecimal256(r.matched - sb.qty_before, 18) * sb.price)
        - (bb.quote_before + toDecimal256(r.matched - bb.qty_before, 18) * bb.price) - r.fees_quote AS realised_pnl,
    r.sold_quote - r.bought_quote + toDecimal256(r.bought - r.sold, 18) * m.mid_at_fill - r.fees_quote AS mtm_pnl
FROM (SELECT *, least(bought, sold) AS matched FROM ladder) AS r
ASOF LEFT JOIN
(
    SELECT backtest_id, model, venue, symbol, price, bought - qty AS qty_before,
           bought_quote - toDecimal256(price, 18) * qty AS quote_before
    FROM ladder WHERE side = 'buy'
) AS bb ON r.backtest_id = bb.backtest_id AND r.model = bb.model AND r.venue = bb.venue AND r.symbol = bb.symbol AND r.matched >= bb.qty_before
ASOF LEFT JOIN
(
    SELECT backtest_id, model, venue, symbol, price, sold - qty AS qty_before,
           sold_quote - toDecimal256(price, 18) * qty AS quote_before
    FROM ladder WHERE side = 'sell'
) AS sb ON r.backtest_id = sb.backtest_id AND r.model = sb.model AND r.venue = sb.venue AND r.symbol = sb.symbol AND r.matched >= sb.qty_before
LEFT JOIN
(
    SELECT backtest_id, venue, symbol, trade_id, mid_at_fill FROM execution_fills
) AS m ON r.backtest_id = m.backtest_id AND r.venue = m.venue AND r.symbol = m.symbol AND r.trade_id = m.trade_id;
