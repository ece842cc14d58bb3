"""No stuck book: depth snapshots the venue refuses as final (403) are asked again after a pause.

Against the simulated exchange over real sockets: once the books are true, a depth gap forces
BTCUSDT to resync while the venue answers its next snapshot requests with 403. The feed reports
each refusal as a FeedEvent, asks again with a growing pause, turns ``/health`` unhealthy while the
book stays unsynced past ``unsynced_unhealthy_s``, and is healthy again once a snapshot is served.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from schemas.topics import Topic
from sim_exchange.process import SimExchangeProcess
from tests.integration.producers.checks import assert_deltas_chain
from tests.integration.producers.conftest import Broker, RunningFeed, consume_all
from tests.polling import wait_for

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
REFUSALS = 3


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_refused_snapshot_is_retried_reported_and_turns_health_unhealthy_until_the_book_is_true(
    own_broker: Broker,
    sim_exchange_factory: Callable[..., SimExchangeProcess],
    start_feed: Callable[..., RunningFeed],
) -> None:
    # Arrange: books true first
    sim = sim_exchange_factory(seed=11, symbols=",".join(SYMBOLS), events_per_s=300)
    feed = start_feed(own_broker.kafka, sim.ws_url, sim.rest_url, SYMBOLS, connections=1,
                      snapshot_refused_pause_s=1.0, snapshot_refused_max_pause_s=2.0, unsynced_unhealthy_s=2.0)
    wait_for(lambda: feed.service.health()[0], 30, "the books true", interval_s=0.1)
    # Act: the venue refuses the next depth snapshots with 403, then a gap forces BTCUSDT to resync
    sim.set_faults({"rest_error": {"path": "/api/v3/depth", "status": 403, "count": REFUSALS,
                                   "after_execution": False}})
    sim.set_faults({"depth_gap": {"connections": "all", "symbol": "BTCUSDT", "count": 1}})
    wait_for(lambda: not feed.service.health()[0], 20, "/health to turn unhealthy", interval_s=0.1)
    stuck_detail = feed.service.health()[1]
    wait_for(lambda: feed.service.health()[0], 30, "/health healthy again", interval_s=0.1)
    final = feed.service.health()
    assert feed.stop() == 0
    # Assert
    assert stuck_detail["stuck_books"] == ["BTCUSDT"], stuck_detail
    assert stuck_detail["symbols"]["BTCUSDT"]["unsynced_s"] >= 2.0
    assert final[1]["symbols"]["BTCUSDT"]["book"] == "live", final
    events = [e for _, e in consume_all(own_broker.kafka, Topic.HEALTH, 10) if e["symbol"] == "BTCUSDT"]
    refusals = [e for e in events if e["kind"] == "other" and "not retriable" in e["detail"]]
    assert [e["count"] for e in refusals] == list(range(1, REFUSALS + 1)), [e["detail"] for e in refusals]
    assert all("403" in e["detail"] or "-1007" in e["detail"] for e in refusals), refusals[0]["detail"]
    pauses = [b["ts_event"] - a["ts_event"] for a, b in itertools.pairwise(refusals)]
    assert all(p >= 500_000_000 for p in pauses), pauses  # asked again after a pause, not in a loop
    after = [e["kind"] for e in events if e["ts_event"] > refusals[-1]["ts_event"]]
    assert "recovered" in after, after
    book = [d for _, d in consume_all(own_broker.kafka, Topic.BOOK, 4) if d["symbol"] == "BTCUSDT"]
    assert_deltas_chain(book)
