"""Faust's aiokafka transport with a configurable fetch wait and no lost records around seeks.

Faust hard-codes ``fetch_max_wait_ms=1500`` for its worker consumer. Kafka answers a fetch as soon as
data arrives, but aiokafka keeps at most one fetch in flight per broker and builds it from the
partitions fetchable when it is sent: a partition resumed by flow control, or whose buffered records
were just consumed, waits for the held fetch to come back before it is fetched again, up to the
whole wait. The fetch wait is therefore a setting (``kafka.streams_fetch_max_wait_ms``), applied here
before the consumer starts.

Faust drops records it has fetched but not yet handed to an agent whenever the flow stops (a
rebalance, the end of table recovery) and then relies on "seek to committed offsets" to fetch them
again. aiokafka's ``seek_to_committed`` leaves the position alone where the committed offset is
None or 0, i.e. for every partition of a group that has not committed yet: the dropped records were
then lost (seen as a fresh worker missing a book snapshot and a few trades). Those partitions are
sought explicitly: to 0, or to the beginning when nothing was committed (``auto_offset_reset`` is
``earliest``).

At the end of table recovery Faust resumes the stream partitions, seeks them to the committed
offsets and only then resumes flow control, which empties the agents' input queues. Records the
fetch loop handed to an agent while the seek was under way were emptied out with the queues, yet
the fetch loop had already moved its read offset past them, so they were never read again (seen on
a loaded machine as a fresh worker missing every partition's first records, book snapshots
included). The flow is therefore stopped before every seek; Faust resumes it right after.

md.book partitions never committed are joined late (:mod:`streams.late_join`): when the feed keeps
md.book.snapshots, they are sought to where the latest snapshots continue, not to the beginning.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aiokafka
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from schemas.topics import Topic
from streams.late_join import LateJoin

log = logging.getLogger(__name__)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this when start() builds its Fetcher
        consumer._fetch_max_wait_ms = transport.fetch_max_wait_ms
        return consumer

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self._seek_to_committed)

    async def _seek_to_committed(self) -> Mapping[TP, int]:
        consumer = self._ensure_consumer()
        committed = await consumer.seek_to_committed()
        changelogs = self.consumer.app.tables.changelog_topics
        for tp, offset in committed.items():
            if offset == 0 and tp.topic not in changelogs:
                consumer.seek(tp, 0)
        never = [tp for tp, offset in committed.items() if offset is None and tp.topic not in changelogs]
        late_join: LateJoin | None = self.consumer.transport.late_join
        if late_join is not None:
            late = [tp for tp in never if tp.topic == Topic.BOOK.value]
            starts = await self._late_starts(late_join, sorted(tp.partition for tp in late))
            for tp in late:
                if tp.partition in starts:
                    consumer.seek(tp, starts[tp.partition])
            never = [tp for tp in never if not (tp.topic == Topic.BOOK.value and tp.partition in starts)]
        if never:
            await consumer.seek_to_beginning(*never)
        return committed

    @staticmethod
    async def _late_starts(late_join: LateJoin, partitions: list[int]) -> dict[int, int]:
        # a failed read of the snapshots costs the late joiner its head start, never the worker
        if not partitions:
            return late_join.prepare([])
        try:
            return await asyncio.to_thread(late_join.prepare, partitions)
        except Exception:
            log.exception("could not read md.book.snapshots; late md.book partitions read from their beginning",
                          extra={"partitions": partitions})
            return late_join.prepare([])


class _Consumer(faust_aiokafka.Consumer):
    async def perform_seek(self) -> None:
        self.stop_flow()
        await super().perform_seek()

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop (faust-streaming 0.15.3), delivering each message without four tasks.

        Faust hands every message to the conductor through ``wait_first(callback(message),
        suspend_flow.wait())``: four tasks and an ``asyncio.wait`` per message, measured as the largest
        single cost of a worker (~15 % of its CPU at a backlog). Delivery puts into the channels'
        queues without blocking (``put_nowait_enhanced``; a full queue pauses the partition instead),
        so while the flow is not suspended the callback is awaited directly; during a rebalance the
        message goes through Faust's race as before (it is dropped and fetched again after the seek).
        """
        callback = self.callback
        getmany = self.getmany
        suspended = self.suspend_flow.is_set
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every, num_since_yield = 100, 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)  # getmany may run in a loop without giving the event loop a turn
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await asyncio.sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            if suspended():
                                await self.wait_first(callback(message), self.suspend_flow.wait())
                            else:
                                await callback(message)
                            set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception:
            self.log.exception("Drain messages raised")
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """The ``kafka://`` transport with a worker fetch wait of ``fetch_max_wait_ms``; ``late_join`` None = md.book
    partitions never committed are read from their beginning."""

    Consumer = _Consumer

    def __init__(self, *args: Any, fetch_max_wait_ms: int, late_join: LateJoin | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.late_join = late_join

    async def _really_create_topic(self, owner: Any, client: aiokafka.AIOKafkaClient, topic: str, partitions: int,
                                   replication: int, **kwargs: Any) -> None:
        await super()._really_create_topic(owner, client, topic, partitions, replication, **kwargs)
        if not owner.should_stop:  # Faust skips the creation while stopping
            await _until_listed(client, topic, partitions, kwargs.get("timeout", 30_000) / 1000)


async def _until_listed(client: aiokafka.AIOKafkaClient, topic: str, partitions: int, timeout_s: float) -> None:
    """Wait until the cluster's metadata lists every partition of ``topic`` with a leader.

    Kafka answers CreateTopics once the controller has the topic, before the brokers' metadata lists
    it. A worker joins its group right after creating its internal topics, and Faust's assignor
    leaves out a topic the metadata does not list yet ("Ignoring missing topic"): the worker then
    ran without that topic's partitions until a metadata refresh (minutes). Seen on a loaded machine
    as a fresh stack's worker that emitted no flow feature for two minutes, or committed no offset
    in its first seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        listed = (await client.fetch_all_metadata()).available_partitions_for_topic(topic) or set()
        if len(listed) >= partitions:
            return
        if loop.time() > deadline:
            log.warning("created topic not listed by the cluster's metadata in time; going on",
                        extra={"topic": topic, "partitions_listed": len(listed), "partitions": partitions})
            return
        await asyncio.sleep(0.05)
