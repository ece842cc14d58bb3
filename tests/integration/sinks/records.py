"""One valid sample record per topic, with exact decimals and distinct ns stamps."""

from __future__ import annotations

from typing import Any

T0 = 1_764_150_000_123_456_789  # 2025-11-26, ns


def sample_records() -> dict[str, dict[str, Any]]:
    """Return ``{topic: record}`` covering every record type."""
    base = {"venue": "binance", "symbol": "BTCUSDT", "ts_event": T0, "ts_recv": T0 + 1_000}
    derived = {**base, "ts_emit": T0 + 5_000}
    return {
        "md.trades": {**base, "trade_id": 1, "price": "123456789.12345678", "qty": "0.00000001", "side": "sell"},
        "md.book": {**base, "snapshot": False, "first_update_id": 10, "last_update_id": 12,
                    "bids": [{"price": "64000.01", "qty": "1.5"}, {"price": "63999.99", "qty": "0"}],
                    "asks": [{"price": "64000.02", "qty": "0.00000001"}]},
        "md.bbo": {**base, "update_id": 12, "bid_price": "64000.01", "bid_qty": "1.5", "ask_price": "64000.02",
                   "ask_qty": "0.25"},
        "md.health": {**base, "event_id": "c1-7", "kind": "gap", "connection_id": "c1", "detail": "missed 3",
                      "first_update_id": 13, "last_update_id": 15, "count": 3},
        "md.instruments": {"venue": "kraken", "symbol": "BTC/USD", "base": "BTC", "quote": "USD", "tick_size": "0.1",
                           "lot_size": "0.00000001", "ts_event": T0, "ts_recv": T0 + 1_000},
        "features.book": {**derived, "update_id": 12, "mid": 64000.015, "spread": 0.01, "spread_bps": 0.0015,
                          "microprice": 64000.0125, "imbalance_1": 0.7, "imbalance_5": 0.1, "imbalance_10": -0.2,
                          "depth_bid_10bps": 5.5, "depth_ask_10bps": 4.25},
        "features.cross": {**derived, "venue": "cross", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT",
                           "bid_price": "64000.01", "bid_qty": "1.5", "bid_venues": "binance", "ask_price": "64000.02",
                           "ask_qty": "0.25", "ask_venues": "binance", "mid": "64000.015",
                           "quotes": [{"venue": "binance", "symbol": "BTCUSDT", "bid_price": "64000.01",
                                       "ask_price": "64000.02", "mid": "64000.015", "bps_vs_mid": "0", "update_id": 12,
                                       "recv": T0 + 1_000}],
                           "stale": [{"venue": "kraken", "symbol": "BTC/USDT", "reason": "health:gap", "since": T0}],
                           "trigger_venue": "binance", "trigger_symbol": "BTCUSDT", "source_topic": "md.bbo",
                           "source_partition": 3, "source_offset": 7},
        "features.flow": {**derived, "last_trade_id": 1, "volume_imbalance_1s": 0.5, "volume_imbalance_10s": 0.25,
                          "volume_imbalance_60s": 0.0, "count_imbalance_1s": 1.0, "count_imbalance_10s": 0.5,
                          "count_imbalance_60s": 0.1, "signed_volume_60s": -2.5, "realized_vol_60s": 0.001,
                          "vwap_60s": 64000.5},
        "bars.1s": {**derived, "interval": "1s", "start": T0 - 123_456_789, "end": T0 + 876_543_211,
                    "open": "64000", "high": "64001.5", "low": "63999", "close": "64000.5", "volume": "2.00000001",
                    "quote_volume": "128001.00064", "vwap": "64000.500320000000000000123", "trade_count": 3,
                    "first_trade_id": 1, "last_trade_id": 3, "version": 0},
        "bars.1m": {**derived, "interval": "1m", "start": T0 - 30_123_456_789, "end": T0 + 29_876_543_211,
                    "open": "64000", "high": "64001.5", "low": "63999", "close": "64000.5", "volume": "2",
                    "quote_volume": "128001", "vwap": "64000.5", "trade_count": 3, "first_trade_id": 1,
                    "last_trade_id": 3, "version": 1},
        "signals": {**derived, "signal_id": "sig-1", "side": "buy", "strength": 0.8, "target": "0.001",
                    "urgency": 0.5, "model": "imbalance-v1", "expires_at": T0 + 2_000_000_000,
                    "reference_price": "64000.015", "inputs": [{"topic": "features.book", "partition": 2, "offset": 7}]},
        "orders": {**derived, "client_order_id": "sig-1-0-0", "seq": 0, "signal_id": "sig-1", "side": "buy",
                   "order_type": "LIMIT", "time_in_force": "GTC", "price": "64000.01", "qty": "0.001",
                   "status": "new", "previous_status": "pending_new", "filled_qty": "0", "avg_price": None,
                   "venue_order_id": "v-1", "reason": None, "error_code": None},
        "fills": {**derived, "trade_id": 99, "client_order_id": "sig-1-0-0", "venue_order_id": "v-1",
                  "signal_id": "sig-1", "side": "buy", "price": "64000.01", "qty": "0.001", "fee": "0.00000075",
                  "fee_asset": "BNB", "liquidity": "maker", "account": "acct-1"},
        "executor.health": {**derived, "symbol": "", "event_id": "acct-1:1:0", "account": "acct-1",
                            "kind": "reconciliation_diff", "detail": "differs",
                            "balance_diffs": [{"asset": "BTC", "qty": "0.00999", "priced": True}],
                            "value_quote": "640.32", "open_orders": [{"symbol": "BTCUSDT", "client_order_id": "manual",
                                                                      "ours": False}],
                            "trading_state": "ACTIVE", "state_reason": ""},
        "dlq": {**base, "stage": "streams", "source_topic": "md.trades", "partition": 1, "offset": 5,
                "raw": b"\x00\xffraw", "error": "bad"},
    }
