"""Latency report: distribution of each hop's latency from the ``hop_latency`` view."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from clickhouse_connect.driver.client import Client

HOP_ORDER = ("event->recv", "recv->emit", "signal->order", "order->fill")


@dataclass(frozen=True)
class LatencyReport:
    """What the plot shows: records per hop label."""

    records: dict[str, int]
    path: Path


def latency_frame(client: Client, since_s: int, max_per_hop: int = 200_000) -> pd.DataFrame:
    """Per-record latency (µs) by hop and source over the last ``since_s`` (sampled per hop)."""
    return client.query_df(
        "SELECT hop, source, latency_ns / 1000 AS latency_us FROM hop_latency "
        "WHERE ts >= now() - {since:UInt32} LIMIT {cap:UInt32} BY hop, source",
        parameters={"since": since_s, "cap": max_per_hop},
    )


def latency_report(client: Client, since_s: int, out: Path) -> LatencyReport:
    """Box plot (log scale) of latency per hop/source with p50/p99 annotated; write a PNG to ``out``."""
    frame = latency_frame(client, since_s)
    labels, series = [], []
    if not frame.empty:
        frame["label"] = frame["hop"] + "\n" + frame["source"]
        order = sorted(frame["label"].unique(), key=lambda label: (
            HOP_ORDER.index(label.split("\n")[0]) if label.split("\n")[0] in HOP_ORDER else 99, label))
        for label in order:
            values = frame.loc[frame["label"] == label, "latency_us"].clip(lower=0.001)
            labels.append(label)
            series.append(values)
    fig, axis = plt.subplots(figsize=(max(8, 1.6 * len(labels) + 2), 6))
    if series:
        axis.boxplot(series, tick_labels=labels, showfliers=True, whis=(1, 99))
        axis.set_yscale("log")
        for i, values in enumerate(series, start=1):
            axis.annotate(f"p50 {values.quantile(0.5):,.0f}\np99 {values.quantile(0.99):,.0f}\nn={len(values)}",
                          (i, values.max()), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    else:
        axis.text(0.5, 0.5, "no stamped records in the window", ha="center", transform=axis.transAxes)
    axis.set_ylabel("latency (µs, log)")
    axis.set_title(f"per-hop latency, last {since_s}s (whiskers p1..p99)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return LatencyReport({label: len(values) for label, values in zip(labels, series, strict=True)}, out)
