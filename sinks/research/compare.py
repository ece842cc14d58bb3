"""Live trading against a backtest of the same window, side by side: signals, orders, fills, slippage, PnL.

The window selects one venue's signals by their input's receive time (``ts_recv``), which a backtest keeps from the
archived input: the live signals of ``[start, end)`` and the backtest's, then each side's orders and
fills by signal. PnL is each side's ``execution_pnl`` after the last of those fills, summed over model
and instrument (cumulative from that side's first archived fill: a backtest starts flat, live trading
carries what it traded before the window).
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pandas as pd

from sinks.research.archive import Archive, TimeLike
from sinks.research.execution import mean_bps

COLUMNS = ("metric", "live", "backtest")


def _side(archive: Archive, backtest_id: str, venue: str, start: TimeLike,
          end: TimeLike) -> tuple[set[str], dict[str, object]]:
    signals = archive.signals(venue=venue, backtest_id=backtest_id)
    signals = signals[(signals["ts_recv"] >= _stamp(start)) & (signals["ts_recv"] < _stamp(end))]
    ids = set(signals["signal_id"])
    orders = archive.execution_orders(backtest_id=backtest_id)
    orders = orders[orders["signal_id"].isin(ids)]
    fills = archive.execution_fills(backtest_id=backtest_id)
    fills = fills[fills["signal_id"].isin(ids)]
    pnl = archive.pnl(backtest_id=backtest_id)
    pnl = pnl[pnl["trade_id"].isin(set(fills["trade_id"]))]
    last = pnl.groupby(["model", "venue", "symbol"]).tail(1) if len(pnl) else pnl
    filled_qty = sum(fills["qty"], Decimal(0))
    maker_qty = sum(fills[fills["liquidity"] == "maker"]["qty"], Decimal(0))
    return ids, {
        "orders": len(orders),
        "filled_orders": int((orders["fills"].fillna(0).astype(int) > 0).sum()),
        "fills": len(fills),
        "filled_qty": filled_qty,
        "maker_share": (maker_qty / filled_qty).quantize(Decimal("0.0001")) if filled_qty else None,
        "slippage_arrival_bps_mean": mean_bps(orders["slippage_arrival_bps"]),
        "slippage_reference_bps_mean": mean_bps(orders["slippage_reference_bps"]),
        "fees_quote": sum(last["fees_quote"], Decimal(0)) if len(last) else None,
        "realised_pnl": sum(last["realised_pnl"], Decimal(0)) if len(last) else None,
        "mtm_pnl": sum(last["mtm_pnl"].dropna(), Decimal(0)) if len(last) else None,
    }


def _stamp(value: TimeLike) -> pd.Timestamp:
    if isinstance(value, int):
        return pd.Timestamp(value, unit="ns", tz="UTC")
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp


def live_vs_backtest(archive: Archive, backtest_id: str, venue: str, start: TimeLike, end: TimeLike) -> pd.DataFrame:
    """Rows ``metric``, ``live``, ``backtest``: signals of ``venue`` (and how many ids both have), then order and
    fill figures. A backtest trades one venue (the executor's); live signals of other venues are left out."""
    live_ids, live = _side(archive, "", venue, start, end)
    test_ids, test = _side(archive, backtest_id, venue, start, end)
    rows = [("signals", len(live_ids), len(test_ids)),
            ("signals_in_both", len(live_ids & test_ids), len(live_ids & test_ids)),
            *((name, live[name], test[name]) for name in live)]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_comparison(table: pd.DataFrame, path: Path) -> None:
    """The table as CSV (decimals as plain strings, missing as empty)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for row in table.itertuples(index=False):
            writer.writerow(["" if v is None else format(v, "f") if isinstance(v, Decimal) else v for v in row])
