"""The execution views (execution_orders, execution_fills, execution_pnl) against an independent computation.

A generated history (tests/integration/sinks/execution_data.py) goes through the sink's row path into
a fresh database of the real warehouse; every figure the views give is computed again here with
pandas and :mod:`decimal` from the generated records (first-in-first-out PnL with a queue of lots,
not the views' cumulative-quantity form), and must be equal to the last digit.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinks.ddl import table_spec
from tests.integration.sinks.conftest import Archive
from tests.integration.sinks.execution_data import S, execution_history
from tests.integration.sinks.known_data import write_history

HORIZONS_S = (0, 1, 10, 60)
START_NS = 1_790_000_000 * S


def div(numerator: Decimal, denominator: Decimal) -> Decimal:
    """The exact quotient cut toward zero at 18 places (the views' rule for every ratio)."""
    with localcontext() as ctx:
        ctx.prec, ctx.rounding = 200, ROUND_DOWN
        return (numerator / denominator).quantize(Decimal("1e-18"))


def sign(side: str) -> int:
    return 1 if side == "buy" else -1


def decimals(history: dict[str, list[dict[str, Any]]], topic: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """The topic's records as a frame (every field a column, also without records), ``columns`` as Decimal."""
    frame = pd.DataFrame(history[topic], columns=[c.name for c in table_spec(topic).columns])
    for column in columns:
        frame[column] = frame[column].map(lambda v: None if v is None else Decimal(v))
    return frame


class Expected:
    """The execution figures of one generated history, from its records alone."""

    def __init__(self, history: dict[str, list[dict[str, Any]]]) -> None:
        self.bbo = decimals(history, "md.bbo", ("bid_price", "ask_price")).sort_values(
            ["ts_recv", "update_id"], kind="stable")
        self.cross = decimals(history, "features.cross", ("mid",)).sort_values(
            ["ts_recv", "ts_emit", "source_partition", "source_offset"], kind="stable")
        self.signals = (decimals(history, "signals", ("reference_price",)).sort_values("ts_emit", kind="stable")
                        .drop_duplicates("signal_id").set_index("signal_id"))
        instrument = history["md.instruments"][-1]
        fills = (decimals(history, "fills", ("price", "qty", "fee")).sort_values("ts_emit", kind="stable")
                 .drop_duplicates(["venue", "symbol", "trade_id"]))
        fills["model"] = fills["signal_id"].map(self.signals["model"])
        fills["fee_quote"] = [
            fee if asset == instrument["quote"] else fee * price if asset == instrument["base"] else None
            for fee, asset, price in zip(fills["fee"], fills["fee_asset"], fills["price"], strict=True)]
        self.fills = fills
        self.orders = decimals(history, "orders", ("price", "qty"))

    def mid_at(self, t: int, covered: bool = False) -> Decimal | None:
        known = self.bbo[self.bbo["ts_recv"] <= t]
        if known.empty or (covered and t > self.bbo["ts_recv"].max()):
            return None
        last = known.iloc[-1]
        return div(last["bid_price"] + last["ask_price"], Decimal(2))

    def cross_at(self, t: int) -> Decimal | None:
        if (known := self.cross[self.cross["ts_recv"] <= t]).empty:
            return None
        return known.iloc[-1]["mid"]

    def fill_rows(self) -> dict[int, tuple]:
        rows = {}
        for f in self.fills.itertuples():
            mids = [self.mid_at(f.ts_event + h * S, covered=True) for h in HORIZONS_S]
            markouts = [None if m is None else div(sign(f.side) * (m - f.price) * 10000, f.price) for m in mids[1:]]
            rows[f.trade_id] = (f.model, f.client_order_id, f.side, f.price, f.qty, f.liquidity, f.fee_quote,
                                *mids, *markouts)
        return rows

    def order_rows(self) -> dict[str, tuple]:
        rows = {}
        for cid, events in self.orders.sort_values("seq").groupby("client_order_id"):
            first = events.iloc[0]
            signal = self.signals.loc[first["signal_id"]]
            arrival, cross = self.mid_at(signal["ts_emit"]), self.cross_at(signal["ts_emit"])
            fills = self.fills[self.fills["client_order_id"] == cid]
            created = int(events["ts_emit"].min())
            s = sign(first["side"])
            if fills.empty:
                filled = avg = fees = first_ns = last_ns = passive_share = None
                slippages: list[Decimal | None] = [None, None, None]
                fill_ratio = Decimal(0)
            else:
                filled = sum(fills["qty"], Decimal(0))
                avg = div(sum(p * q for p, q in zip(fills["price"], fills["qty"], strict=True)), filled)
                slippages = [None if b is None else div(s * (avg - b) * 10000, b)
                             for b in (arrival, cross, signal["reference_price"])]
                fees = None if any(f is None for f in fills["fee_quote"]) else sum(fills["fee_quote"], Decimal(0))
                first_ns, last_ns = int(fills["ts_event"].min()) - created, int(fills["ts_event"].max()) - created
                passive_share = div(sum(fills.loc[fills["liquidity"] == "maker", "qty"], Decimal(0)), filled)
                fill_ratio = div(filled, first["qty"])
            rows[cid] = (signal["model"], first["order_type"] == "LIMIT_MAKER", first["qty"], events.iloc[-1]["status"],
                         signal["reference_price"], arrival, cross, filled, avg, *slippages, fees, first_ns, last_ns,
                         passive_share, fill_ratio)
        return rows

    def pnl_rows(self) -> dict[int, tuple]:
        """FIFO with an explicit queue of open lots, per model and instrument, in trade order."""
        rows = {}
        for _, fills in self.fills.groupby(["model", "venue", "symbol"]):
            lots: deque[list] = deque()  # [signed qty, price], oldest first
            realised = cash = fees = position = Decimal(0)
            unpriced = 0
            for f in fills.sort_values(["ts_event", "trade_id"]).itertuples():
                s, left = sign(f.side), f.qty
                while left and lots and (lots[0][0] > 0) != (s > 0):
                    take = min(left, abs(lots[0][0]))
                    realised += take * (f.price - lots[0][1]) * -s
                    lots[0][0] += s * take
                    left -= take
                    if lots[0][0] == 0:
                        lots.popleft()
                if left:
                    lots.append([s * left, f.price])
                cash -= s * f.price * f.qty
                position += s * f.qty
                fees += f.fee_quote or 0
                unpriced += f.fee_quote is None
                mid = self.mid_at(f.ts_event, covered=True)
                rows[f.trade_id] = (position, cash, fees, unpriced, realised - fees,
                                    None if mid is None else cash + position * mid - fees)
        return rows


def _rows(archive: Archive, sql: str) -> list[dict[str, Any]]:
    return list(archive.client.query(sql).named_results())


@pytest.mark.integration
@pytest.mark.timeout(600)
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rnd=st.randoms(use_true_random=False))
def test_execution_views_equal_an_independent_pandas_computation(fresh_archive: Callable[[], Archive],
                                                                 rnd: random.Random) -> None:
    # Arrange
    history = execution_history(rnd, START_NS)
    archive = fresh_archive()
    write_history(archive.client, history)
    with localcontext(prec=200):  # products of 18-place decimals need more than the default 28 digits
        expected = Expected(history)
        expected_fills, expected_orders, expected_pnl = expected.fill_rows(), expected.order_rows(), expected.pnl_rows()

    # Act
    fills = _rows(archive, "SELECT * FROM execution_fills")
    orders = _rows(archive, "SELECT * FROM execution_orders")
    pnl = _rows(archive, "SELECT * FROM execution_pnl")

    # Assert
    assert {r["trade_id"]: (
        r["model"], r["client_order_id"], r["side"], r["price"], r["qty"], r["liquidity"], r["fee_quote"],
        r["mid_at_fill"], r["mid_1s"], r["mid_10s"], r["mid_60s"],
        r["markout_1s_bps"], r["markout_10s_bps"], r["markout_60s_bps"]) for r in fills} == expected_fills
    assert {r["client_order_id"]: (
        r["model"], r["passive"], r["qty"], r["status"], r["reference_price"], r["arrival_mid"],
        r["arrival_cross_mid"], r["filled_qty"], r["avg_fill_price"], r["slippage_arrival_bps"],
        r["slippage_cross_bps"], r["slippage_reference_bps"], r["fees_quote"], r["first_fill_ns"],
        r["last_fill_ns"], r["passive_share"], r["fill_ratio"]) for r in orders} == expected_orders
    assert {r["trade_id"]: (r["position"], r["cash"], r["fees_quote"], r["unpriced_fees"], r["realised_pnl"],
                            r["mtm_pnl"]) for r in pnl} == expected_pnl


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_fifo_pnl_through_a_flip_from_long_to_short_worked_by_hand(fresh_archive: Callable[[], Archive]) -> None:
    # Arrange: buy 1 @ 100 (fee 0.1 USDT), sell 3 @ 110 (fee 0.001 BTC = 0.11 USDT), buy 1 @ 105 (no fee);
    # the mid is 100 until 2.5 s, then 108
    t0 = START_NS
    base = {"venue": "binance", "symbol": "BTCUSDT"}
    bbo = [{**base, "update_id": u, "bid_price": bid, "bid_qty": "1", "ask_price": ask, "ask_qty": "1",
            "ts_event": t, "ts_recv": t} for u, (t, bid, ask) in enumerate(
        ((t0, "99", "101"), (t0 + 5 * S // 2, "107", "109"), (t0 + 100 * S, "107", "109")))]
    fills = [{**base, "trade_id": k, "client_order_id": f"o{k}", "venue_order_id": f"v{k}", "signal_id": "s1",
              "side": side, "price": price, "qty": qty, "fee": fee, "fee_asset": asset, "liquidity": "taker",
              "account": "a", "ts_event": t0 + k * S, "ts_recv": t0 + k * S, "ts_emit": t0 + k * S}
             for k, side, price, qty, fee, asset in ((1, "buy", "100", "1", "0.1", "USDT"),
                                                     (2, "sell", "110", "3", "0.001", "BTC"),
                                                     (3, "buy", "105", "1", "0", "USDT"))]
    signal = {**base, "signal_id": "s1", "side": "buy", "strength": 0.5, "target": "1", "urgency": 1.0,
              "model": "m", "expires_at": t0 + 9 * S, "reference_price": "100", "inputs": [],
              "ts_event": t0, "ts_recv": t0, "ts_emit": t0}
    instrument = {**base, "base": "BTC", "quote": "USDT", "tick_size": "0.01", "lot_size": "0.001",
                  "ts_event": t0, "ts_recv": t0}
    archive = fresh_archive()
    write_history(archive.client, {"md.bbo": bbo, "fills": fills, "signals": [signal], "md.instruments": [instrument]})

    # Act
    rows = archive.client.query("SELECT trade_id, position, cash, fees_quote, realised_pnl, mtm_pnl "
                                "FROM execution_pnl ORDER BY trade_id").result_rows

    # Assert: realised = 10 on the first unit sold, then 5 when the short is bought back at 105
    assert [(k, *map(Decimal, v)) for k, *v in rows] == [
        (1, Decimal(1), Decimal(-100), Decimal("0.1"), Decimal("-0.1"), Decimal("-0.1")),
        (2, Decimal(-2), Decimal(230), Decimal("0.21"), Decimal("9.79"), Decimal("29.79")),
        (3, Decimal(-1), Decimal(125), Decimal("0.21"), Decimal("14.79"), Decimal("16.79")),
    ]
