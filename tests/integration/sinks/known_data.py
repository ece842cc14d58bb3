"""A small, fully known market and trading history near now, written through the sink's own row path."""

from __future__ import annotations

import threading
import time
from typing import Any

from clickhouse_connect.driver.client import Client

from infra.backoff import Backoff
from sinks.batcher import Batcher
from sinks.ddl import table_spec
from sinks.rows import RowMapper
from sinks.writer import ArchiveWriter

S = 1_000_000_000
MINUTES = 10
OUTAGE = (300, 320)  # seconds into the window without any BBO or trade (an outage)


def known_history(now_ns: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Return ``{topic: records}``: 10 minutes ending ~1 minute ago with one outage and two feed gaps."""
    end = (now_ns or time.time_ns()) - 60 * S
    start = end - MINUTES * 60 * S
    start -= start % S
    base = {"venue": "binance", "symbol": "BTCUSDT"}
    trades, bbo = [], []
    for i in range(MINUTES * 60 * 4):  # every 250 ms
        t = start + i * S // 4
        if OUTAGE[0] * S <= t - start < OUTAGE[1] * S:
            continue
        bid = 64_000 + (i % 40) * 0.5
        spread = "0.01" if i % 10 else "0.50"
        ask = f"{bid + float(spread):.2f}"
        bbo.append({**base, "update_id": i, "bid_price": f"{bid:.2f}", "bid_qty": "1.25", "ask_price": ask,
                    "ask_qty": "0.5", "ts_event": t, "ts_recv": t + 800_000 + (i % 7) * 100_000})
        trades.append({**base, "trade_id": i, "price": ask if i % 2 else f"{bid:.2f}", "qty": f"0.{i % 97 + 1:08d}",
                       "side": "buy" if i % 2 else "sell", "ts_event": t, "ts_recv": t + 900_000})
    health = [
        {**base, "symbol": "", "event_id": "c1-1", "kind": "disconnect", "connection_id": "c1", "detail": "closed",
         "ts_event": start + 120 * S, "ts_recv": start + 120 * S},
        {**base, "symbol": "", "event_id": "c1-2", "kind": "connect", "connection_id": "c1", "detail": "open",
         "ts_event": start + 125 * S, "ts_recv": start + 125 * S},
        {**base, "event_id": "c1-3", "kind": "gap", "connection_id": "c1", "detail": "u 100..120 missing",
         "first_update_id": 100, "last_update_id": 120, "count": 21,
         "ts_event": start + 400 * S, "ts_recv": start + 400 * S},
        {**base, "event_id": "c1-4", "kind": "resync", "connection_id": "c1", "detail": "snapshot",
         "ts_event": start + 402 * S, "ts_recv": start + 402 * S},
    ]
    features, signals, orders, fills = [], [], [], []
    for k in range(20):
        t = start + (30 + k * 25) * S
        features.append({**base, "update_id": k, "mid": 64_000.0, "spread": 0.01, "spread_bps": 0.0016,
                         "microprice": 64_000.001, "imbalance_1": 0.2, "imbalance_5": 0.1, "imbalance_10": 0.0,
                         "depth_bid_10bps": 3.0, "depth_ask_10bps": 2.0, "ts_event": t, "ts_recv": t + S // 1000,
                         "ts_emit": t + S // 1000 + 150_000})
        side = "buy" if k % 2 == 0 else "sell"
        signal_id = f"sig-{k}"
        emit = t + 2 * S // 1000
        signals.append({**base, "signal_id": signal_id, "side": side, "strength": 0.5 if side == "buy" else -0.5,
                        "target": "0.01", "urgency": 0.5, "model": "imbalance-v1", "expires_at": t + 2 * S,
                        "reference_price": "64000.005", "inputs": [{"topic": "features.book", "partition": 0,
                                                                    "offset": k}],
                        "ts_event": t, "ts_recv": t + S // 1000, "ts_emit": emit,
                        "ts_md_ack": t + S // 1000 + 300_000, "ts_in": t + S // 1000 + 500_000})
        cid = f"{signal_id}-0"
        price = "64000.01" if side == "buy" else "64000.00"
        for seq, (status, prev) in enumerate((("new", "pending_new"), ("filled", "new"))):
            orders.append({**base, "client_order_id": cid, "seq": seq, "signal_id": signal_id, "side": side,
                           "order_type": "LIMIT", "time_in_force": "GTC", "price": price, "qty": "0.01",
                           "status": status, "previous_status": prev, "filled_qty": "0.01" if seq else "0",
                           "avg_price": price if seq else None, "venue_order_id": f"v{k}", "reason": None,
                           "error_code": None, "ts_event": emit + 1_000_000 + seq * S, "ts_recv": emit + 1_400_000 + seq * S,
                           "ts_emit": emit + 1_400_000 + seq * S + 50_000, "ts_signal_ack": emit + 250_000,
                           "ts_in": emit + 400_000, "ts_sent": emit + 600_000})
        fills.append({**base, "trade_id": 10_000 + k, "client_order_id": cid, "venue_order_id": f"v{k}",
                      "signal_id": signal_id, "side": side, "price": price, "qty": "0.01", "fee": "0.0000075",
                      "fee_asset": "BTC" if side == "buy" else "USDT", "liquidity": "maker",
                      "ts_event": emit + S // 100, "ts_recv": emit + S // 100 + 300_000,
                      "ts_emit": emit + S // 100 + 500_000})
    instruments = [{**base, "base": "BTC", "quote": "USDT", "tick_size": "0.01", "lot_size": "0.00001",
                    "ts_event": start, "ts_recv": start}]
    return {"md.trades": trades, "md.bbo": bbo, "md.health": health, "md.instruments": instruments,
            "features.book": features,
            "signals": signals, "orders": orders, "fills": fills, "features.cross": cross_venue(start)}


def cross_venue(start: int) -> list[dict[str, Any]]:
    """BTC/USDT on binance and kraken every 20 s; kraken is stale (a gap) in records 20-24 and binance alone makes the view.

    Binance quotes 64000.00/64000.10 (mid 64000.05), kraken 64000.20/64000.30 (mid 64000.25): the consolidated
    view is 64000.20 (kraken) / 64000.10 (binance), crossed, mid 64000.15; binance -0.0156 bps, kraken +0.0156 bps.
    """
    records = []
    for k in range(30):
        t = start + (10 + k * 20) * S
        binance = {"venue": "binance", "symbol": "BTCUSDT", "bid_price": "64000.00", "ask_price": "64000.10",
                   "mid": "64000.05", "bps_vs_mid": "0", "update_id": k, "recv": t}
        trigger = {"trigger_venue": "binance", "trigger_symbol": "BTCUSDT", "source_topic": "md.bbo",
                   "source_partition": 0, "source_offset": k, "ts_event": t - S // 1000, "ts_recv": t,
                   "ts_emit": t + 200_000}
        if 20 <= k < 25:
            records.append({"venue": "cross", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT",
                            "bid_price": "64000", "bid_qty": "1.25", "bid_venues": "binance", "ask_price": "64000.1",
                            "ask_qty": "0.5", "ask_venues": "binance", "mid": "64000.05", "quotes": [binance],
                            "stale": [{"venue": "kraken", "symbol": "BTC/USDT", "reason": "health:gap",
                                       "since": start + 410 * S}], **trigger})
            continue
        kraken = {"venue": "kraken", "symbol": "BTC/USDT", "bid_price": "64000.20", "ask_price": "64000.30",
                  "mid": "64000.25", "bps_vs_mid": "0.0156", "update_id": 1000 + k, "recv": t - S // 10}
        records.append({"venue": "cross", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT",
                        "bid_price": "64000.2", "bid_qty": "0.75", "bid_venues": "kraken", "ask_price": "64000.1",
                        "ask_qty": "0.5", "ask_venues": "binance", "mid": "64000.15",
                        "quotes": [{**binance, "bps_vs_mid": "-0.0156"}, kraken], "stale": [], **trigger})
    return records


def write_history(client: Client, history: dict[str, list[dict[str, Any]]]) -> None:
    """Insert ``history`` with the sink's row mapping and writer (offsets = list positions, partition 0)."""
    specs = {topic: table_spec(topic) for topic in history}
    batcher = Batcher(max_rows=10**9, max_age_ms=10**9)
    for topic, records in history.items():
        mapper = RowMapper(specs[topic])
        for offset, record in enumerate(records):
            batcher.add_row(specs[topic].name, mapper.row(record, topic, 0, offset), topic, 0, offset, 0)
    writer = ArchiveWriter(client, {s.name: s for s in specs.values()}, Backoff())
    assert writer.write(batcher.take(), threading.Event())
