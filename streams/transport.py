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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP


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


class _Consumer(faust_aiokafka.Consumer):
    async def perform_seek(self) -> None:
        self.stop_flow()
        await super().perform_seek()

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """The ``kafka://`` transport with a worker fetch wait of ``fetch_max_wait_ms``."""

    Consumer = _Consumer

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms
