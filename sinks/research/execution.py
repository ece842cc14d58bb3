"""Execution report: slippage, markouts, PnL and the passive fill ratio from the execution views.

Four panels (PNG) and, on request, one CSV row per model and instrument with the same figures.
The figures come from ``execution_orders``, ``execution_fills`` and ``execution_pnl``
(docs/analysts.md); the plot converts the exact decimals to floats only to draw them, the CSV keeps
them as decimals.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from sinks.research.archive import Archive

HORIZONS_S = (1, 10, 60)
BPS_PLACES = Decimal("0.0001")
SUMMARY_COLUMNS = (
    "model", "venue", "symbol", "orders", "filled_orders", "fills", "filled_qty",
    "slippage_arrival_bps_mean", "slippage_reference_bps_mean",
    *(f"markout_{h}s_bps_mean" for h in HORIZONS_S),
    "passive_orders", "passive_fill_ratio", "fees_quote", "realised_pnl", "mtm_pnl",
)


@dataclass(frozen=True)
class ExecutionReport:
    """What the report shows: counts behind each panel and the files written."""

    orders: int
    fills: int
    models: tuple[str, ...]
    path: Path
    csv_path: Path | None


@dataclass(frozen=True)
class ExecutionFrames:
    """The rows the report reads, for orders created and fills executed in the window."""

    orders: pd.DataFrame
    fills: pd.DataFrame
    pnl: pd.DataFrame


def execution_frames(archive: Archive, since_s: int, backtest_id: str = "") -> ExecutionFrames:
    """Read the window's orders, fills and PnL rows (PnL stays cumulative from the first fill).

    Live records (``backtest_id`` ""): the last ``since_s`` seconds; a backtest's: the whole run (its
    records carry the archive's times, not today's).
    """
    start = None if backtest_id else pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=since_s)
    return ExecutionFrames(archive.execution_orders(start=start, backtest_id=backtest_id),
                           archive.execution_fills(start=start, backtest_id=backtest_id),
                           archive.pnl(start=start, backtest_id=backtest_id))


def mean_bps(values: pd.Series) -> Decimal | None:
    """Exact mean of the present values, to 4 places (half even); None without any."""
    present = [v for v in values if v is not None and not pd.isna(v)]
    if not present:
        return None
    return (sum(present, Decimal(0)) / len(present)).quantize(BPS_PLACES, ROUND_HALF_EVEN)


def passive_fill_ratio(orders: pd.DataFrame) -> Decimal | None:
    """Filled quantity over posted quantity of the passive orders (None without any)."""
    passive = orders[orders["passive"].astype(bool)]
    if passive.empty:
        return None
    filled = sum((v for v in passive["filled_qty"] if v is not None and not pd.isna(v)), Decimal(0))
    return (filled / sum(passive["qty"], Decimal(0))).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)


def execution_summary(frames: ExecutionFrames) -> pd.DataFrame:
    """One row per (model, venue, symbol): counts, mean slippage and markouts (bps, 4 places), PnL at the last fill."""
    keys = ["model", "venue", "symbol"]
    groups = sorted({tuple(r) for r in frames.orders[keys].itertuples(index=False)}
                    | {tuple(r) for r in frames.fills[keys].itertuples(index=False)})
    rows = []
    for key in groups:
        orders = frames.orders[(frames.orders[keys] == pd.Series(key, index=keys)).all(axis=1)]
        fills = frames.fills[(frames.fills[keys] == pd.Series(key, index=keys)).all(axis=1)]
        pnl = frames.pnl[(frames.pnl[keys] == pd.Series(key, index=keys)).all(axis=1)]
        last = pnl.iloc[-1] if len(pnl) else None
        filled = orders[orders["fills"].fillna(0).astype(int) > 0]
        rows.append({
            "model": key[0], "venue": key[1], "symbol": key[2], "orders": len(orders), "filled_orders": len(filled),
            "fills": len(fills), "filled_qty": sum(fills["qty"], Decimal(0)),
            "slippage_arrival_bps_mean": mean_bps(orders["slippage_arrival_bps"]),
            "slippage_reference_bps_mean": mean_bps(orders["slippage_reference_bps"]),
            **{f"markout_{h}s_bps_mean": mean_bps(fills[f"markout_{h}s_bps"]) for h in HORIZONS_S},
            "passive_orders": int(orders["passive"].astype(bool).sum()),
            "passive_fill_ratio": passive_fill_ratio(orders),
            "fees_quote": None if last is None else last["fees_quote"],
            "realised_pnl": None if last is None else last["realised_pnl"],
            "mtm_pnl": None if last is None or pd.isna(last["mtm_pnl"]) else last["mtm_pnl"],
        })
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _floats(values: pd.Series) -> pd.Series:
    return pd.Series([float(v) for v in values if v is not None and not pd.isna(v)], dtype=float)


def _empty(axis: plt.Axes, what: str) -> None:
    axis.text(0.5, 0.5, f"no {what} in the window", ha="center", va="center", transform=axis.transAxes)


def _slippage_panel(axis: plt.Axes, orders: pd.DataFrame) -> None:
    arrival, reference = _floats(orders["slippage_arrival_bps"]), _floats(orders["slippage_reference_bps"])
    if arrival.empty and reference.empty:
        _empty(axis, "filled orders")
    else:
        both = pd.concat([arrival, reference])
        bins = 30 if both.max() > both.min() else 1
        for series, label, color in ((arrival, "vs arrival mid", "tab:blue"),
                                     (reference, "vs signal reference price", "tab:orange")):
            if not series.empty:
                axis.hist(series, bins=bins, range=(both.min(), both.max() + (0 if bins > 1 else 1)), alpha=0.6,
                          color=color, label=f"{label} (n={len(series)}, mean {series.mean():.2f})")
        axis.axvline(0, color="black", lw=0.8)
        axis.legend(fontsize=8)
    axis.set_title("Slippage per filled order")
    axis.set_xlabel("slippage of the average fill price (bps; > 0 = cost)")
    axis.set_ylabel("orders")


def _markout_panel(axis: plt.Axes, fills: pd.DataFrame) -> None:
    drawn = False
    for liquidity, color in (("maker", "tab:green"), ("taker", "tab:red")):
        subset = fills[fills["liquidity"] == liquidity]
        means = [_floats(subset[f"markout_{h}s_bps"]) for h in HORIZONS_S]
        points = [(h, m.mean(), len(m)) for h, m in zip(HORIZONS_S, means, strict=True) if not m.empty]
        if points:
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=color,
                      label=f"{liquidity} fills (n={max(p[2] for p in points)})")
            drawn = True
    if drawn:
        axis.axhline(0, color="black", lw=0.8)
        axis.set_xscale("log")
        axis.set_xticks(HORIZONS_S, [f"{h} s" for h in HORIZONS_S])
        axis.legend(fontsize=8)
    else:
        _empty(axis, "marked fills")
    axis.set_title("Markout after the fill (mean)")
    axis.set_xlabel("time after the fill")
    axis.set_ylabel("markout (bps; > 0 = market moved our way)")


def _pnl_panel(axis: plt.Axes, pnl: pd.DataFrame) -> None:
    if pnl.empty:
        _empty(axis, "fills")
    for i, ((model, venue, symbol), rows) in enumerate(pnl.groupby(["model", "venue", "symbol"], sort=True)):
        color = f"C{i % 10}"
        label = f"{model or '(no signal)'} {venue}:{symbol}"
        marked = rows[rows["mtm_pnl"].notna()]
        axis.step(marked["ts_event"], _floats(marked["mtm_pnl"]), where="post", color=color,
                  label=f"{label} marked to mid")
        axis.step(rows["ts_event"], _floats(rows["realised_pnl"]), where="post", color=color, ls="--",
                  label=f"{label} realised (FIFO)")
    if not pnl.empty:
        axis.legend(fontsize=7)
        axis.tick_params(axis="x", labelrotation=20)
    axis.set_title("PnL per model, net of fees (cumulative)")
    axis.set_xlabel("fill time (UTC)")
    axis.set_ylabel("PnL (quote units)")


def _fill_ratio_panel(axis: plt.Axes, orders: pd.DataFrame) -> None:
    passive = orders[orders["passive"].astype(bool)]
    if passive.empty:
        _empty(axis, "passive orders")
    else:
        models = sorted(passive["model"].unique())
        ratios = [float(passive_fill_ratio(passive[passive["model"] == m]) or 0) for m in models]
        bars = axis.bar([m or "(no signal)" for m in models], ratios, color="tab:purple")
        for bar, model in zip(bars, models, strict=True):
            axis.annotate(f"{int((passive['model'] == model).sum())} orders", (bar.get_x() + bar.get_width() / 2,
                          bar.get_height()), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
        axis.set_ylim(0, 1.1)
    axis.set_title("Passive (LIMIT_MAKER) fill ratio per model")
    axis.set_xlabel("model")
    axis.set_ylabel("filled qty / posted qty")


def write_summary_csv(summary: pd.DataFrame, path: Path) -> None:
    """Write the summary with decimals as plain strings and missing figures as empty cells."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(summary.columns)
        for row in summary.itertuples(index=False):
            writer.writerow(["" if v is None or (not isinstance(v, str) and pd.isna(v))
                             else format(v, "f") if isinstance(v, Decimal) else v for v in row])


def execution_report(archive: Archive, since_s: int, out: Path, csv_out: Path | None = None,
                     backtest_id: str = "") -> ExecutionReport:
    """Draw the four panels to ``out`` (PNG) and, with ``csv_out``, write :func:`execution_summary` there."""
    frames = execution_frames(archive, since_s, backtest_id)
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    _slippage_panel(axes[0][0], frames.orders)
    _markout_panel(axes[0][1], frames.fills)
    _pnl_panel(axes[1][0], frames.pnl)
    _fill_ratio_panel(axes[1][1], frames.orders)
    what = f"backtest {backtest_id}" if backtest_id else f"last {since_s} s"
    fig.suptitle(f"Execution quality, {what}: {len(frames.orders)} orders, {len(frames.fills)} fills")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    if csv_out is not None:
        write_summary_csv(execution_summary(frames), csv_out)
    models = tuple(sorted(set(frames.orders["model"]) | set(frames.fills["model"])))
    return ExecutionReport(len(frames.orders), len(frames.fills), models, out, csv_out)
