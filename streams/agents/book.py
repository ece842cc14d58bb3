"""Agent: md.book + md.health (+ md.bbo) -> features.book and signals (the model is driven by book updates).

Signals are computed here rather than from ``features.book`` so that a signal's inputs are market-data
offsets, which stay the same when the worker replays after a crash. On an md.book partition joined late
each book starts from its md.book.snapshots seed (:mod:`streams.late_join`), taken at the instrument's
first md.book record there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any

from faust.types import StreamT

from infra.book_snapshots import SnapshotRecord
from schemas.topics import BOOK_SNAPSHOTS, Topic
from streams import metrics, tables
from streams.app import Runtime
from streams.batching import take_ready
from streams.intake import Accepted, Rejected, check_input
from streams.models.base import InputRef
from streams.pipelines.book import BookConfig, BookInstrument, BookOutcome, book_config

MS = 1_000_000
LOG_APPEND_TIME = 1  # Kafka's timestamp type of a record stamped by the broker

log = logging.getLogger(__name__)


def broker_time_ns(msg: Any) -> int | None:
    """The broker's append time of ``msg`` in ns (ms resolution), or None when its topic keeps producer times."""
    if msg.timestamp_type != LOG_APPEND_TIME or msg.timestamp is None:
        return None
    return round(msg.timestamp * 1000) * MS


async def seed_book(
    rt: Runtime, inst: BookInstrument, seed: SnapshotRecord, cfg: BookConfig, deliveries: list[Awaitable[Any]]
) -> None:
    """Start ``inst``'s book from its md.book.snapshots record; a bad one goes to dlq (the book then waits for a
    snapshot on md.book, as without seeds)."""
    checked = check_input(rt.serde, seed.key, seed.value, "BookDelta", rt.allowed)
    if isinstance(checked, Accepted) and not checked.record["snapshot"]:
        rec = checked.record
        checked = Rejected("invalid_record", "md.book.snapshots record is not a snapshot", rec["venue"], rec["symbol"],
                           rec["ts_event"])
    if isinstance(checked, Rejected):
        log.warning("bad md.book.snapshots record", extra={"key": seed.key, "partition": seed.partition,
                                                            "offset": seed.offset, "error": checked.error})
        metrics.SEEDS.labels("rejected").inc()
        deliveries.append(await rt.reject(
            checked.reason, checked.error, checked.venue, checked.symbol, BOOK_SNAPSHOTS, seed.partition, seed.offset,
            seed.value, checked.ts_event,
        ))
        return
    record = checked.record
    applied = inst.seed(record, cfg)
    metrics.SEEDS.labels("applied" if applied else "older").inc()
    log.info("book seeded from md.book.snapshots" if applied else "md.book.snapshots seed older than the book; unused",
             extra={"key": seed.key, "update_id": record["last_update_id"], "levels": inst.book.depth()})


def attach(rt: Runtime) -> None:
    """Register the book agent on ``rt.app``."""
    cfg = book_config(rt.settings.streams)
    s = rt.settings.streams
    expected = {Topic.BOOK.value: "BookDelta", Topic.HEALTH.value: "FeedEvent", Topic.BBO.value: "BBO"}

    states = tables.InstrumentStates(
        rt.tables.book, lambda saved: BookInstrument.from_state(saved) if saved else BookInstrument()
    )

    @rt.app.agent(rt.topics.book_input, name="book")
    async def book_agent(stream: StreamT) -> None:
        async for events in take_ready(stream, s.batch_size, s.batch_gap_ms / 1000, s.batch_within_ms / 1000):
            started = time.perf_counter()
            metrics.BATCH_RECORDS.labels("book").observe(len(events))
            touched: dict[bytes, tuple[BookInstrument, int]] = {}
            deliveries: list[Awaitable[Any]] = []
            for event in events:
                msg = event.message
                taken = time.time_ns()
                is_health = msg.topic == Topic.HEALTH.value
                record = await rt.admit(msg, expected[msg.topic], deliveries, venue_wide_ok=is_health)
                if record is None:
                    continue
                if is_health and not record["symbol"]:
                    continue  # connection-level event: books go stale only through per-symbol events
                key = f"{record['venue']}:{record['symbol']}".encode()
                inst = touched[key][0] if key in touched else states.get(key)
                ref = InputRef(msg.topic, msg.partition, msg.offset)
                if inst.seen(ref):
                    metrics.REPLAYED.labels(msg.topic).inc()
                    continue
                try:
                    if is_health:
                        out = None
                        inst.on_health(record)
                    elif msg.topic == Topic.BBO.value:
                        out = inst.on_bbo(record, cfg)
                    else:
                        seed = rt.late_join.take(key, msg.partition) if rt.late_join is not None else None
                        if seed is not None:
                            await seed_book(rt, inst, seed, cfg, deliveries)
                        out = inst.on_delta(record, ref, cfg)
                except Exception as exc:  # one record must not stop the agent
                    log.exception("book record failed", extra={"topic": msg.topic, "partition": msg.partition,
                                                               "offset": msg.offset, "raw": msg.value})
                    out = BookOutcome(error=repr(exc), reason="processing_error")
                if out is not None:
                    if out.error:
                        deliveries.append(await rt.reject(
                            out.reason, out.error, record["venue"], record["symbol"], msg.topic,
                            msg.partition, msg.offset, msg.value, record["ts_event"],
                        ))
                    elif out.note:
                        metrics.BOOK_NOTES.labels(out.note.split(":")[0]).inc()
                    if out.features is not None:
                        deliveries.append(await rt.send(Topic.FEATURES_BOOK, key, out.features))
                    if out.signal is not None:
                        out.signal["ts_md_ack"] = broker_time_ns(msg)
                        out.signal["ts_in"] = taken
                        deliveries.append(await rt.send(Topic.SIGNALS, key, out.signal))
                inst.mark(ref)
                touched[key] = (inst, msg.partition)
            await rt.delivered(deliveries)
            for key, (inst, partition) in touched.items():
                states.save(partition, key, inst, inst.to_state())
                (rt.stale.add if inst.stale else rt.stale.discard)(key.decode())
            metrics.STALE.set(len(rt.stale))
            metrics.BATCH_SECONDS.labels("book").observe(time.perf_counter() - started)
