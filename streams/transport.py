"""Faust's aiokafka transport with a configurable fetch wait and exact changelog end offsets.

Faust hard-codes ``fetch_max_wait_ms=1500`` for its worker consumer. A broker that answers a fetch
as soon as data arrives makes that harmless, but the local tansu broker holds an empty fetch for the
whole wait even when records arrive meanwhile (measured: p50 345 ms from produce to consume at
1500 ms, 3.4 ms at 20 ms). The fetch wait is therefore a setting, applied here before the consumer
starts.

Table recovery reads each changelog partition up to its end offset ("highwater") and stops there.
tansu answers ListOffsets with the base offset of the partition's last record batch plus one, so
when the last batch holds several state writes, recovery would stop at the first of them and
restore a state older than the committed input offsets: the inputs in between would be lost (seen
as a kill -9 test losing one trade per partition). The highwaters therefore come from
:func:`infra.topics.end_offsets`, which is exact on tansu and Apache Kafka alike.

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
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiokafka
from confluent_kafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from infra.topics import end_offsets


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
        if never:
            await consumer.seek_to_beginning(*never)
        return committed

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        if self.consumer.in_transaction:
            return await super()._highwaters(partitions)
        exact = await asyncio.to_thread(
            end_offsets, self.consumer.transport.bootstrap, [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        )
        return {tp: exact[(tp.topic, tp.partition)][1] for tp in partitions}


class _Consumer(faust_aiokafka.Consumer):
    async def perform_seek(self) -> None:
        self.stop_flow()
        await super().perform_seek()

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """The ``kafka://`` transport: fetch wait of ``fetch_max_wait_ms``, exact highwaters from ``bootstrap``."""

    Consumer = _Consumer

    def __init__(self, *args: Any, fetch_max_wait_ms: int, bootstrap: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.bootstrap = bootstrap
