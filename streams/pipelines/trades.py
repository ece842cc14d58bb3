"""One instrument's trade pipeline: Trade in -> FlowFeatures and 1 s / 1 m Bars out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.features.bars import INTERVALS_NS, BarBuilder, TooLate
from streams.features.flow import FlowState
from streams.models.base import InputRef


@dataclass
class TradeOutcome:
    """Records (without ``ts_emit``) and problems produced by one trade."""

    flow: dict[str, Any] | None = None
    bars: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (dlq reason, message)


class TradeInstrument:
    """Flow windows, bar builders and dedup positions of one instrument; saved in ``trade-state``."""

    def __init__(self, lateness_ns: int, flow_bucket_ns: int) -> None:
        self.lateness_ns = lateness_ns
        self.flow = FlowState(flow_bucket_ns)
        self.bars = {label: BarBuilder(ns, lateness_ns) for label, ns in INTERVALS_NS.items()}
        self.last_trade_id = -1
        self.offsets: dict[str, int] = {}

    def seen(self, ref: InputRef) -> bool:
        """True when this input (or a later one of its partition) was already applied."""
        return ref.offset <= self.offsets.get(f"{ref.topic}:{ref.partition}", -1)

    def mark(self, ref: InputRef) -> None:
        """Remember ``ref`` as applied."""
        self.offsets[f"{ref.topic}:{ref.partition}"] = ref.offset

    def on_trade(self, trade: dict[str, Any]) -> TradeOutcome:
        """Apply one Trade record."""
        if trade["trade_id"] <= self.last_trade_id:
            message = f"out-of-order trade id {trade['trade_id']} <= {self.last_trade_id}"
            return TradeOutcome(errors=[("out_of_order", message)])
        self.last_trade_id = trade["trade_id"]
        out = TradeOutcome()
        values = self.flow.add(trade)
        out.flow = {
            "venue": trade["venue"], "symbol": trade["symbol"], "last_trade_id": trade["trade_id"],
            **values.fields, "ts_event": trade["ts_event"], "ts_recv": trade["ts_recv"],
        }
        for label, builder in self.bars.items():
            released = builder.add(trade)
            if isinstance(released, TooLate):
                out.errors.append(("late_trade", f"late trade for {label} bar: {released.reason}"))
                continue
            for bar in released:
                out.bars.append((label, {"venue": trade["venue"], "symbol": trade["symbol"], "interval": label, **bar}))
        return out

    def to_state(self) -> dict[str, Any]:
        """JSON-able form for the changelog."""
        return {
            "flow": self.flow.to_state(),
            "bars": {label: b.to_state() for label, b in self.bars.items()},
            "last_trade_id": self.last_trade_id,
            "offsets": self.offsets,
        }

    @classmethod
    def from_state(cls, lateness_ns: int, flow_bucket_ns: int, s: dict[str, Any]) -> TradeInstrument:
        """Inverse of :meth:`to_state`."""
        inst = cls(lateness_ns, flow_bucket_ns)
        inst.flow = FlowState.from_state(flow_bucket_ns, s["flow"])
        inst.bars = {
            label: BarBuilder.from_state(INTERVALS_NS[label], lateness_ns, b) for label, b in s["bars"].items()
        }
        inst.last_trade_id = s["last_trade_id"]
        inst.offsets = s["offsets"]
        return inst
