"""Agent: md.trades -> features.flow, bars.1s and bars.1m (one pass decodes each trade once)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any

from faust.types import StreamT

from schemas.topics import Topic
from streams import metrics, tables
from streams.app import Runtime
from streams.batching import take_ready
from streams.models.base import InputRef
from streams.pipelines.trades import TradeInstrument, TradeOutcome

log = logging.getLogger(__name__)

BAR_TOPIC = {"1s": Topic.BARS_1S, "1m": Topic.BARS_1M}


def attach(rt: Runtime) -> None:
    """Register the trades agent on ``rt.app``."""
    s = rt.settings.streams
    lateness_ns = s.bar_allowed_lateness_ms * 1_000_000
    bucket_ns = s.flow_bucket_ms * 1_000_000

    states = tables.InstrumentStates(
        rt.tables.trades,
        lambda saved: (
            TradeInstrument.from_state(lateness_ns, bucket_ns, saved) if saved
            else TradeInstrument(lateness_ns, bucket_ns)
        ),
    )

    @rt.app.agent(rt.topics.trades, name="trades")
    async def trades_agent(stream: StreamT) -> None:
        async for events in take_ready(stream, s.batch_size, s.batch_gap_ms / 1000, s.batch_within_ms / 1000):
            started = time.perf_counter()
            metrics.BATCH_RECORDS.labels("trades").observe(len(events))
            touched: dict[bytes, tuple[TradeInstrument, int]] = {}
            deliveries: list[Awaitable[Any]] = []
            for event in events:
                msg = event.message
                trade = await rt.admit(msg, "Trade", deliveries)
                if trade is None:
                    continue
                key = f"{trade['venue']}:{trade['symbol']}".encode()
                inst = touched[key][0] if key in touched else states.get(key)
                ref = InputRef(msg.topic, msg.partition, msg.offset)
                if inst.seen(ref):
                    metrics.REPLAYED.labels(msg.topic).inc()
                    continue
                try:
                    out = inst.on_trade(trade)
                except Exception as exc:  # one record must not stop the agent
                    log.exception("trade record failed", extra={"topic": msg.topic, "partition": msg.partition,
                                                                "offset": msg.offset, "raw": msg.value})
                    out = TradeOutcome(errors=[("processing_error", repr(exc))])
                for reason, error in out.errors:
                    deliveries.append(await rt.reject(reason, error, trade["venue"], trade["symbol"], msg.topic,
                                                      msg.partition, msg.offset, msg.value, trade["ts_event"]))
                if out.flow is not None:
                    deliveries.append(await rt.send(Topic.FEATURES_FLOW, key, out.flow))
                for label, bar in out.bars:
                    deliveries.append(await rt.send(BAR_TOPIC[label], key, bar))
                inst.mark(ref)
                touched[key] = (inst, msg.partition)
            await rt.delivered(deliveries)
            for key, (inst, partition) in touched.items():
                states.save(partition, key, inst, inst.to_state())
            metrics.BATCH_SECONDS.labels("trades").observe(time.perf_counter() - started)
