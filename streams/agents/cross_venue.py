"""Agents: md.bbo + md.health, regrouped by base/quote through md.instruments -> features.cross.

Two stages, because a pair's venues sit on different partitions (keys are ``venue:symbol``):

* ``cross-route`` reads md.instruments, md.bbo and md.health. All three are keyed by instrument and
  co-partitioned, so the worker that owns an instrument's BBOs also owns its Instrument records: it
  keeps the instrument -> base/quote mapping in the ``cross-instruments`` table and forwards each
  BBO and per-symbol health event to the internal repartition topic ``<app_id>-cross-pairs``, keyed
  ``BASE/QUOTE``, with its source position. An input of an instrument without a definition is
  counted, logged (once per instrument) and dead-lettered; processing goes on.
* ``cross`` reads the repartition topic: one partition holds every venue of a pair, in each source
  partition's order. The pure :class:`~streams.pipelines.cross_venue.PairState` (table ``cross-state``)
  turns each input into at most one CrossVenueBBO. Inputs are recognised by their *source* offset,
  so what the router forwards again after a crash is skipped, like a replay of the agent's own input.

Crash semantics as in the other agents: outputs (forwards, records, dead letters) are acknowledged
by the broker before a batch's table state goes to the changelog.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any

import orjson
from faust.types import StreamT

from schemas.topics import Topic
from streams import metrics
from streams.app import Runtime
from streams.batching import take_ready
from streams.models.base import InputRef
from streams.pipelines.cross_venue import CROSS_VENUE, CrossOutcome, PairState, pair_of
from streams.tables import InstrumentStates

MS = 1_000_000
INSTRUMENT_TABLE = "cross-instruments"
PAIR_TABLE = "cross-state"

log = logging.getLogger(__name__)


def repartition_topic(app_id: str) -> str:
    """Name of the internal topic keyed by pair (Faust's ``<app_id>-...`` convention for internal topics)."""
    return f"{app_id}-cross-pairs"


def attach(rt: Runtime) -> None:
    """Register the router and the cross-venue agent on ``rt.app`` (nothing when ``streams.cross_venue`` is off)."""
    s, k = rt.settings.streams, rt.settings.kafka
    if not s.cross_venue:
        return
    max_age_ns, interval_ns = s.cross_max_age_ms * MS, s.cross_interval_ms * MS
    app = rt.app

    def raw(*names: str, **kw: Any) -> Any:
        return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw", **kw)

    route_input = raw(Topic.INSTRUMENTS, Topic.BBO, Topic.HEALTH)
    pairs_name = repartition_topic(s.app_id)
    pairs_topic = raw(pairs_name, internal=True, partitions=k.partitions)
    instruments = app.Table(INSTRUMENT_TABLE, default=None, partitions=k.partitions, key_type=bytes, value_type=bytes)
    pair_table = app.Table(PAIR_TABLE, default=None, partitions=k.partitions, key_type=bytes, value_type=bytes)
    expected = {Topic.INSTRUMENTS.value: "Instrument", Topic.BBO.value: "BBO", Topic.HEALTH.value: "FeedEvent"}
    warned: set[bytes] = set()

    @app.agent(route_input, name="cross-route")
    async def route_agent(stream: StreamT) -> None:
        async for events in take_ready(stream, s.batch_size, s.batch_gap_ms / 1000, s.batch_within_ms / 1000):
            started = time.perf_counter()
            metrics.BATCH_RECORDS.labels("cross-route").observe(len(events))
            defined: dict[bytes, tuple[bytes, int]] = {}  # instrument key -> (pair JSON, partition), this batch
            deliveries: list[Awaitable[Any]] = []
            # definitions first: a feed publishes an instrument's definition before its BBOs, but a fetch may
            # hand them over in either order (a stable sort keeps each partition's order)
            for event in sorted(events, key=lambda e: e.message.topic != Topic.INSTRUMENTS.value):
                msg = event.message
                is_health = msg.topic == Topic.HEALTH.value
                record = await rt.admit(msg, expected[msg.topic], deliveries, venue_wide_ok=is_health)
                if record is None:
                    continue
                key = f"{record['venue']}:{record['symbol']}".encode()
                if msg.topic == Topic.INSTRUMENTS.value:
                    defined[key] = (orjson.dumps({"base": record["base"], "quote": record["quote"]}), msg.partition)
                    continue
                if is_health and not record["symbol"]:
                    metrics.CROSS_SKIPS.labels("connection_event").inc()
                    continue  # connection-level: instruments go stale only through per-symbol events
                raw_def = defined[key][0] if key in defined else instruments.data.get(key)
                if raw_def is None:
                    metrics.CROSS_SKIPS.labels("no_instrument").inc()
                    if key not in warned:
                        warned.add(key)
                        log.warning("no Instrument definition on md.instruments: input skipped", extra={
                            "instrument": key.decode(), "topic": msg.topic, "partition": msg.partition,
                            "offset": msg.offset,
                        })
                    deliveries.append(await rt.reject(
                        "no_instrument_definition", f"no Instrument record for {key.decode()} on md.instruments",
                        record["venue"], record["symbol"], msg.topic, msg.partition, msg.offset, msg.value,
                        record["ts_event"],
                    ))
                    continue
                definition = orjson.loads(raw_def)
                pair = pair_of(definition["base"], definition["quote"])
                envelope = {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset,
                            "base": definition["base"].upper(), "quote": definition["quote"].upper(), "record": record}
                deliveries.append(await app.producer.send(pairs_name, pair.encode(), orjson.dumps(envelope),
                                                          None, None, None))
                metrics.RECORDS_OUT.labels(pairs_name).inc()
            await rt.delivered(deliveries)
            for key, (value, partition) in defined.items():
                instruments.data[key] = value
                instruments.send_changelog(partition, key, value)
            metrics.BATCH_SECONDS.labels("cross-route").observe(time.perf_counter() - started)

    states: InstrumentStates[PairState | None] = InstrumentStates(
        pair_table, lambda saved: PairState.from_state(saved) if saved else None
    )

    @app.agent(pairs_topic, name="cross")
    async def cross_agent(stream: StreamT) -> None:
        async for events in take_ready(stream, s.batch_size, s.batch_gap_ms / 1000, s.batch_within_ms / 1000):
            started = time.perf_counter()
            metrics.BATCH_RECORDS.labels("cross").observe(len(events))
            touched: dict[bytes, tuple[PairState, int]] = {}
            deliveries: list[Awaitable[Any]] = []
            for event in events:
                msg = event.message
                metrics.RECORDS_IN.labels(msg.topic).inc()
                env = orjson.loads(msg.value)
                pair_key: bytes = msg.key
                state = touched[pair_key][0] if pair_key in touched else states.get(pair_key)
                if state is None:
                    state = PairState(pair_key.decode(), env["base"], env["quote"])
                ref = InputRef(env["topic"], env["partition"], env["offset"])
                if state.seen(ref):
                    metrics.REPLAYED.labels(env["topic"]).inc()
                    continue
                record = env["record"]
                try:
                    if env["topic"] == Topic.HEALTH.value:
                        out = state.on_health(record, ref, max_age_ns, interval_ns)
                    else:
                        out = state.on_bbo(record, ref, max_age_ns, interval_ns)
                except Exception as exc:  # one record must not stop the agent
                    log.exception("cross-venue record failed", extra={"pair": pair_key.decode(), **env})
                    out = CrossOutcome(note="processing_error")
                    deliveries.append(await rt.reject(
                        "processing_error", repr(exc), record.get("venue", ""), record.get("symbol", ""),
                        env["topic"], env["partition"], env["offset"], None, record.get("ts_event"),
                    ))
                if out.record is not None:
                    deliveries.append(await rt.send(Topic.FEATURES_CROSS, f"{CROSS_VENUE}:".encode() + pair_key, out.record))
                elif out.note:
                    metrics.CROSS_SKIPS.labels(out.note).inc()
                state.mark(ref)
                touched[pair_key] = (state, msg.partition)
            await rt.delivered(deliveries)
            for pair_key, (state, partition) in touched.items():
                states.save(partition, pair_key, state, state.to_state())
            metrics.BATCH_SECONDS.labels("cross").observe(time.perf_counter() - started)
