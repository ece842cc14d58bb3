"""Prometheus metrics of the simulated exchange (served at ``/metrics`` on its own port)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REST_REQUESTS = Counter("sim_rest_requests_total", "REST requests", ["path", "method", "status"])
REST_LATENCY = Histogram("sim_rest_latency_seconds", "REST handling time")
ERRORS = Counter("sim_errors_total", "errors answered or raised, by Binance code or task", ["code"])
ORDERS = Counter("sim_orders_total", "account orders accepted", ["type", "status"])
TRADES = Counter("sim_trades_total", "trades matched (all symbols)")
BOOK_EVENTS = Counter("sim_book_level_changes_total", "order-book level changes (update ids)")
WS_CONNECTIONS = Gauge("sim_ws_connections", "open websocket connections")
WS_FRAMES = Counter("sim_ws_frames_sent_total", "websocket frames sent")
DISCONNECTS = Counter("sim_ws_disconnects_total", "connections closed by the server", ["reason"])
FAULTS_APPLIED = Counter("sim_faults_applied_total", "faults applied", ["kind"])
FAULTS_FIRED = Counter("sim_faults_fired_total", "REST faults that hit a request", ["kind"])
FLOW_SKIPPED = Counter("sim_flow_events_skipped_total", "background events dropped because the loop was saturated")
WS_API_SESSIONS = Gauge("sim_ws_api_sessions", "open WebSocket API sessions")
WS_API_REQUESTS = Counter("sim_ws_api_requests_total", "WebSocket API requests answered", ["method", "status"])
WS_API_LATENCY = Histogram("sim_ws_api_latency_seconds", "WebSocket API handling time")
USER_EVENTS = Counter("sim_user_events_total", "user-data events made for subscribed accounts (before fan-out to sessions)", ["event"])
