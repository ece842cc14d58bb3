"""A generated trading history with known prices for the execution views: BBOs, cross-venue mids,
signals, orders and fills of two models on one instrument, drawn from a :class:`random.Random`
(hypothesis' ``st.randoms()`` in property tests, so failures shrink; a seeded one for the report).

The draw covers what the views must get right: BBOs sharing a receive nanosecond (the highest
update_id wins), signals before the first BBO (no arrival mid), a signal re-emitted and a fill
re-published (each counts once, the first emission), fees in base, quote and a third asset, orders
never filled, partially filled or filled, marks past the last archived BBO (NULL), positions that
go long, flat and short.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

S = 1_000_000_000
MS = 1_000_000
VENUE, SYMBOL, BASE, QUOTE = "binance", "BTCUSDT", "BTC", "USDT"
MODELS = ("maker-v1", "taker-v2")


def _price(rnd: random.Random, low: int, high: int) -> Decimal:
    places = rnd.choice((2, 5, 8))
    return Decimal(rnd.randint(low * 10**places, high * 10**places)).scaleb(-places)


def execution_history(rnd: random.Random, start_ns: int) -> dict[str, list[dict[str, Any]]]:
    """Return ``{topic: records}`` starting at ``start_ns`` (orders and fills up to ~3 minutes later)."""
    base = {"venue": VENUE, "symbol": SYMBOL}
    bbo, t = [], start_ns
    for update_id in range(rnd.randint(2, 25)):
        t += rnd.choice((0, 1, 400 * MS, 900 * MS, 3 * S, 20 * S))  # 0: the same receive nanosecond
        bid = _price(rnd, 60_000, 60_050)
        ask = bid + Decimal(rnd.randint(1, 900)).scaleb(-2)
        bbo.append({**base, "update_id": 1000 + update_id, "bid_price": str(bid), "bid_qty": "1.5",
                    "ask_price": str(ask), "ask_qty": "0.5", "ts_event": t, "ts_recv": t})
    span = max(t - start_ns, S)
    cross = [_cross_record(start_ns + rnd.randint(-S, span), _price(rnd, 60_000, 60_050), k)
             for k in range(rnd.randint(0, 6))]
    signals, orders, fills = [], [], []
    trade_id = 500
    for k in range(rnd.randint(1, 5)):
        emit = start_ns + rnd.randint(-2 * S, span)
        side = rnd.choice(("buy", "sell"))
        signal = {**base, "signal_id": f"sig-{k}", "side": side, "strength": 0.5 if side == "buy" else -0.5,
                  "target": "1", "urgency": 0.5, "model": rnd.choice(MODELS), "expires_at": emit + 60 * S,
                  "reference_price": str(_price(rnd, 60_000, 60_050)),
                  "inputs": [{"topic": "md.bbo", "partition": 0, "offset": k}],
                  "ts_event": emit - 2 * MS, "ts_recv": emit - MS, "ts_emit": emit}
        signals.append(signal)
        if rnd.random() < 0.3:  # re-emitted after a crash: same id, later
            signals.append({**signal, "ts_emit": emit + 5 * MS})
        for leg in range(rnd.randint(1, 2)):
            passive = rnd.random() < 0.5
            qty_units = rnd.randint(1, 3000)
            qty = Decimal(qty_units).scaleb(-3)
            created = emit + rnd.randint(1, 5) * MS
            cid = f"sig-{k}-{leg}"
            order = {**base, "client_order_id": cid, "signal_id": signal["signal_id"], "side": side,
                     "order_type": "LIMIT_MAKER" if passive else "LIMIT",
                     "time_in_force": None if passive else "IOC", "price": str(_price(rnd, 60_000, 60_050)),
                     "qty": str(qty), "venue_order_id": f"v-{cid}", "reason": None, "error_code": None,
                     "ts_signal_ack": emit + MS // 2, "ts_in": emit + MS // 2, "ts_sent": created + MS // 10}
            parts, left = [], qty_units
            for _ in range(rnd.randint(0, 3)):
                if left == 0:
                    break
                take = rnd.randint(1, left)
                parts.append(take)
                left -= take
            filled = Decimal(0)
            last_at = created
            for take in parts:
                trade_id += rnd.randint(1, 3)
                at = created + rnd.choice((MS, 300 * MS, 2 * S, 15 * S, 70 * S))
                last_at = max(last_at, at)
                fee_asset = rnd.choice((BASE, QUOTE, "BNB"))
                fill = {**base, "trade_id": trade_id, "client_order_id": cid, "venue_order_id": f"v-{cid}",
                        "signal_id": signal["signal_id"], "side": side, "price": str(_price(rnd, 60_000, 60_050)),
                        "qty": str(Decimal(take).scaleb(-3)), "fee": str(Decimal(rnd.randint(0, 10**6)).scaleb(-9)),
                        "fee_asset": fee_asset, "liquidity": "maker" if passive else "taker", "account": "acct",
                        "ts_event": at, "ts_recv": at + MS, "ts_emit": at + 2 * MS}
                fills.append(fill)
                if rnd.random() < 0.2:  # re-published by a replay: same trade, later
                    fills.append({**fill, "ts_emit": fill["ts_emit"] + S})
                filled += Decimal(take).scaleb(-3)
            final = "filled" if filled == qty else "canceled"
            events = [("pending_new", None, created), ("new", "pending_new", created + MS),
                      (final, "new", last_at + MS)]
            for seq, (status, previous, at) in enumerate(events):
                orders.append({**order, "seq": seq, "status": status, "previous_status": previous,
                               "filled_qty": str(filled if seq == 2 else Decimal(0)),
                               "avg_price": None, "ts_event": at, "ts_recv": at + MS // 10, "ts_emit": at + MS // 5})
    instruments = [{**base, "base": BASE, "quote": QUOTE, "tick_size": "0.00000001", "lot_size": "0.001",
                    "ts_event": start_ns - 60 * S, "ts_recv": start_ns - 60 * S}]
    return {"md.bbo": bbo, "md.instruments": instruments, "features.cross": cross, "signals": signals,
            "orders": orders, "fills": fills}


def _cross_record(t: int, mid: Decimal, k: int) -> dict[str, Any]:
    quote = {"venue": VENUE, "symbol": SYMBOL, "bid_price": str(mid - 1), "ask_price": str(mid + 1), "mid": str(mid),
             "bps_vs_mid": "0", "update_id": k, "recv": t}
    return {"venue": "cross", "symbol": f"{BASE}/{QUOTE}", "base": BASE, "quote": QUOTE,
            "bid_price": str(mid - 1), "bid_qty": "1", "bid_venues": VENUE, "ask_price": str(mid + 1),
            "ask_qty": "1", "ask_venues": VENUE, "mid": str(mid), "quotes": [quote], "stale": [],
            "trigger_venue": VENUE, "trigger_symbol": SYMBOL, "source_topic": "md.bbo", "source_partition": 0,
            "source_offset": k, "ts_event": t, "ts_recv": t, "ts_emit": t + MS}
