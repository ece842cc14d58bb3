"""Spread report: per-second spread from ``bbo_1s`` with feed gaps and outages shaded.

Feed gaps come from the ``feed_gaps`` view (md.health events until recovery, connection-level
ones included). Outages are inferred from the data: stretches longer than ``outage_after_s``
without a single BBO update.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from clickhouse_connect.driver.client import Client

GAP_COLOR = "tab:red"
OUTAGE_COLOR = "tab:gray"


@dataclass(frozen=True)
class SpreadReport:
    """What the plot shows."""

    seconds: int
    feed_gaps: int
    outages: int
    path: Path


def spread_frame(client: Client, venue: str, symbol: str, since_s: int) -> pd.DataFrame:
    """Per-second bid, ask, mid, spread and spread_bps of one instrument over the last ``since_s``."""
    return client.query_df(
        "SELECT bucket, toFloat64(bid) AS bid, toFloat64(ask) AS ask, toFloat64(mid) AS mid, "
        "toFloat64(spread) AS spread, spread_bps FROM bbo_1s "
        "WHERE venue = {venue:String} AND symbol = {symbol:String} AND bucket >= now() - {since:UInt32} "
        "ORDER BY bucket",
        parameters={"venue": venue, "symbol": symbol, "since": since_s},
    )


def gap_intervals(client: Client, venue: str, symbol: str, since_s: int) -> list[tuple[datetime, datetime, str]]:
    """Feed-gap intervals touching the window (open gaps end now)."""
    rows = client.query(
        "SELECT gap_start, ifNull(gap_end, now64(9)) AS gap_end, kind FROM feed_gaps "
        "WHERE venue = {venue:String} AND symbol IN ({symbol:String}, '') "
        "AND ifNull(gap_end, now64(9)) >= now() - {since:UInt32} ORDER BY gap_start",
        parameters={"venue": venue, "symbol": symbol, "since": since_s},
    ).result_rows
    return [(start, end, kind) for start, end, kind in rows]


def outage_intervals(buckets: pd.Series, outage_after_s: float) -> list[tuple[datetime, datetime]]:
    """Stretches between consecutive per-second buckets longer than ``outage_after_s``."""
    times = pd.to_datetime(buckets).sort_values().reset_index(drop=True)
    steps = times.diff().dt.total_seconds()
    return [(times[i - 1].to_pydatetime(), times[i].to_pydatetime())
            for i in steps.index[steps > outage_after_s]]


def spread_report(client: Client, venue: str, symbol: str, since_s: int, out: Path,
                  outage_after_s: float = 5.0) -> SpreadReport:
    """Plot spread (bps) with feed gaps and outages shaded; write a PNG to ``out``."""
    frame = spread_frame(client, venue, symbol, since_s)
    gaps = gap_intervals(client, venue, symbol, since_s)
    outages = outage_intervals(frame["bucket"], outage_after_s) if len(frame) > 1 else []
    fig, (ax_spread, ax_mid) = plt.subplots(2, 1, figsize=(12, 6), sharex=True, height_ratios=(2, 1))
    if frame.empty:
        ax_spread.text(0.5, 0.5, f"no BBO for {venue}:{symbol} in the window", ha="center",
                       transform=ax_spread.transAxes)
    else:
        ax_spread.plot(frame["bucket"], frame["spread_bps"], lw=0.8, color="tab:blue", label="spread (bps)")
        ax_mid.plot(frame["bucket"], frame["mid"], lw=0.8, color="tab:green", label="mid")
    for axis in (ax_spread, ax_mid):
        for i, (start, end, _) in enumerate(gaps):
            axis.axvspan(start, max(end, start + timedelta(milliseconds=500)), color=GAP_COLOR, alpha=0.25,
                         label="feed gap" if i == 0 and axis is ax_spread else None)
        for i, (start, end) in enumerate(outages):
            axis.axvspan(start, end, color=OUTAGE_COLOR, alpha=0.3,
                         label="no data (outage)" if i == 0 and axis is ax_spread else None)
    ax_spread.set_ylabel("spread (bps)")
    ax_mid.set_ylabel("mid")
    ax_spread.set_title(f"{venue}:{symbol} spread, last {since_s}s: {len(frame)} s of BBO, "
                        f"{len(gaps)} feed gap(s), {len(outages)} outage(s)")
    ax_spread.legend(loc="upper right")
    fig.autofmt_xdate()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return SpreadReport(len(frame), len(gaps), len(outages), out)
