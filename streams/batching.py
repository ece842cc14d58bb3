"""Adaptive batches for the agents: no waiting when nothing is coming, batches that grow under load.

Faust's ``Stream.take_events(max_, within)`` waits until ``max_`` events are buffered or ``within``
has passed, so an event arriving alone on a quiet market waits the whole window (20 ms here, the
largest part of md -> signal latency). :func:`take_ready` keeps Faust's mechanics (a passive
drainer fills a buffer in the background; events are acked only after the agent has handled their
batch) and changes when a batch is handed over:

* a batch starts with the first buffered event, without any wait;
* it keeps filling only while more events follow within ``gap_s`` of each other (events already
  fetched arrive a few microseconds apart; a lone event on a quiet market has no follower, so it
  goes after at most ``gap_s``);
* it goes at ``max_`` events or ``within_s`` after its first event, whichever comes first: the
  window is only an upper bound, reached under sustained load.

Events that arrive while the agent works on a batch (including its wait for the broker's
acknowledgements) queue up in the stream's channel and make the next batch, so the per-batch costs
(acknowledgement round trip, changelog writes) are paid once per batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from faust.types import EventT, StreamT
from mode.utils.futures import notify

# loop turns without a new event after which the drainer counts as idle (fetched events are handed
# over about one per turn; a fetch from the consumer thread takes longer)
_IDLE_TURNS = 3


async def take_ready(stream: StreamT, max_: int, gap_s: float, within_s: float) -> AsyncIterator[list[EventT]]:
    """Yield lists of 1..``max_`` events as described in the module docstring.

    Uses the same stream internals as ``Stream.take_events`` (faust-streaming 0.15.3, pinned).
    """
    s: Any = stream  # the Stream class, not the protocol: processors, acks and the passive drainer
    events: list[EventT] = []
    ready = asyncio.Event()  # set while the buffer holds at least one event
    arrived = asyncio.Event()  # set by every event added
    room = asyncio.Event()  # cleared while the buffer is full
    room.set()
    consuming: asyncio.Future | None = None  # set while the agent reads the buffer
    loop = asyncio.get_running_loop()

    async def add_to_buffer(value: Any) -> Any:
        nonlocal consuming
        try:
            if consuming is not None:
                try:
                    await consuming
                finally:
                    consuming = None
            event = s.current_event
            if event is None:
                raise RuntimeError("take_ready found current_event is None")
            events.append(event)
            ready.set()
            arrived.set()
            if len(events) >= max_:
                room.clear()
                await s.wait(room)  # at most max_ events per batch
        except asyncio.CancelledError:  # pragma: no cover
            raise
        except Exception as exc:
            s.log.exception("Error adding to take_ready buffer")
            await s.crash(exc)
        return value

    async def fill(deadline: float) -> None:
        """Let the batch grow while events keep following each other, up to ``max_`` or ``deadline``."""
        idle = 0
        while len(events) < max_:
            if idle < _IDLE_TURNS:
                before = len(events)
                await asyncio.sleep(0)
                idle = idle + 1 if len(events) == before else 0
                continue
            wait = min(gap_s, deadline - loop.time())
            if wait <= 0:
                return
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), wait)
            except TimeoutError:
                return
            idle = 0

    s.enable_acks = False  # events are acked below, once the agent has handled their batch
    s.add_processor(add_to_buffer)
    s._enable_passive(aiter(s.channel))
    while not s.should_stop:
        await s.wait_for_stopped(ready)
        if not events:
            continue
        await fill(loop.time() + within_s)
        consuming = loop.create_future()
        batch = list(events)
        try:
            yield batch
        finally:
            events.clear()
            ready.clear()
            for event in batch:
                await s.ack(event)
            notify(consuming)
            room.set()
