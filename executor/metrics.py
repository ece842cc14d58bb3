"""Prometheus metrics of the executor."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


class ExecutorMetrics:
    """Counters, gauges and the signal-to-acknowledgement histogram."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.signals = Counter("executor_signals_total", "signals by stage", ["stage"], registry=registry)
        self.dlq = Counter("executor_dlq_total", "signals sent to dlq by kind", ["kind"], registry=registry)
        self.order_events = Counter("executor_order_events_total", "OrderEvents by status", ["status"], registry=registry)
        self.denied = Counter(
            "executor_denied_total", "orders denied before the venue, by failed check "
            "(risk, lot_size, notional, price_filter, thin_liquidity, no_market_data)", ["check"], registry=registry,
        )
        self.fills = Counter("executor_fills_total", "Fill records published", registry=registry)
        self.delivery_errors = Counter("executor_delivery_errors_total", "Kafka delivery failures", registry=registry)
        self.consumer_errors = Counter(
            "executor_consumer_errors_total", "Kafka consumer errors by loop (signals, market, control)", ["loop"],
            registry=registry,
        )
        self.invalid_transitions = Counter(
            "executor_invalid_transitions_total", "orders whose venue report the state machine refused (kept managed)",
            registry=registry,
        )
        self.control_rejected = Counter(
            "executor_control_rejected_total", "control messages rejected (unsigned, bad_signature, replayed, malformed)",
            ["why"], registry=registry,
        )
        self.balance_diff = Gauge(
            "executor_balance_diff", "venue balance minus the balance expected from fills (periodic reconciliation)",
            ["asset"], registry=registry,
        )
        self.foreign_open_orders = Gauge(
            "executor_foreign_open_orders", "open orders on the account that are not the executor's", registry=registry,
        )
        self.push_up = Gauge("executor_push_session_up", "1 while the WebSocket API session is subscribed",
                             registry=registry)
        self.push_sessions = Counter("executor_push_sessions_total", "WebSocket API sessions subscribed (reconnects + 1)",
                                     registry=registry)
        self.push_frames = Counter("executor_push_frames_total", "WebSocket API frames read, by kind (answer, "
                                   "report, account, malformed, foreign)", ["kind"], registry=registry)
        self.md_errors = Counter("executor_md_errors_total", "undecodable market-data records", registry=registry)
        self.ack_latency = Histogram(
            "executor_signal_to_ack_seconds", "signal emit to venue acknowledgement",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        self.inflight = Gauge("executor_inflight_signals", "signals in progress", registry=registry)
        self.open_orders = Gauge("executor_open_orders", "orders live on the venue", registry=registry)
        self.trading_state = Gauge("executor_trading_state", "0 ACTIVE, 1 REDUCING, 2 HALTED", registry=registry)
        self.position = Gauge("executor_position", "net position (base units)", ["symbol"], registry=registry)
        self.realized_pnl = Gauge("executor_realized_pnl", "realized PnL (quote)", ["symbol"], registry=registry)
        self.unrealized_pnl = Gauge("executor_unrealized_pnl", "unrealized PnL at mid (quote)", ["symbol"], registry=registry)
