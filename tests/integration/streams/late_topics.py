"""``tickpipe streams worker`` whose Faust-created topics named in ``TEST_LATE_TOPICS`` appear late.

A fault injection for the worker's start: the broker takes ``TEST_LATE_SECONDS`` to list
each such topic after the worker asked for it, as a loaded broker's metadata lags its controller
(seen for ``<app_id>-cross-pairs`` and ``<app_id>-cross-state-changelog``). Run as
``python -m tests.integration.streams.late_topics`` from the repository root.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

LATE = tuple(os.environ["TEST_LATE_TOPICS"].split(","))
DELAY_S = float(os.environ.get("TEST_LATE_SECONDS", "3"))
_create = faust_aiokafka.Transport._really_create_topic
_asked: dict[str, float] = {}  # topic -> when the worker first asked for it
_pending: set[asyncio.Future] = set()


async def _late_create(self: Any, owner: Any, client: Any, topic: str, *args: Any, **kwargs: Any) -> None:
    if not topic.endswith(LATE):
        return await _create(self, owner, client, topic, *args, **kwargs)
    if topic not in _asked:  # the request is answered now; the topic exists DELAY_S later
        _asked[topic] = time.monotonic()

        async def later() -> None:
            await asyncio.sleep(DELAY_S)
            await _create(self, owner, client, topic, *args, **kwargs)

        task = asyncio.ensure_future(later())
        _pending.add(task)
        task.add_done_callback(_pending.discard)
    elif time.monotonic() - _asked[topic] > DELAY_S:
        await _create(self, owner, client, topic, *args, **kwargs)


faust_aiokafka.Transport._really_create_topic = _late_create

if __name__ == "__main__":
    from infra.cli import main

    sys.argv = ["tickpipe", "streams", "worker"]
    main()
