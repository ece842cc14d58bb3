"""Fault drills: one live stack, one fault after another, nothing lost or doubled after any of them.

The drills run in file order against the same stack (a module fixture) to keep the run short. After
each, :meth:`DrillBench.settle` pauses the venue, lets the pipeline drain and compares the archive
with the exchange: no trade missing or duplicated (from the first trade the feed saw to the
exchange's last), no duplicate order; the feed-health topic (archived as ``v_md_health``) must
record what happened. Each drill's figures are written to ``drills.json`` in the test's temporary
directory (path printed at the end) and tabulated in docs/reliability.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from infra.stack import SERVICES
from tests.faults.drills import (
    OURS,
    DrillBench,
    DrillRecord,
    duplicated_count,
    health_kinds,
    missing_count,
    wait_for,
)
from tests.stack_harness import running_stack

pytestmark = [pytest.mark.integration, pytest.mark.faults]

# The drills fault the Binance feed's connections and count its trades against the simulated exchange's
# list; the Kraken and Coinbase feeds of the same exchange (their own drills: tests/integration/producers)
# would only add load to a 2-core machine.
ALL = ",".join(s.name for s in SERVICES if s.name not in ("feed-kraken", "feed-coinbase"))
OUTAGE_S = 10.0


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DrillBench]:
    workdir = tmp_path_factory.mktemp("drills")
    # A shorter signal cooldown than the default 5 s: more orders are in flight when a fault hits.
    with running_stack(
        workdir, ALL, TICKPIPE_SIM__EVENTS_PER_S="200", TICKPIPE_STREAMS__SIGNAL_COOLDOWN_MS="1000"
    ) as stack:
        drills = DrillBench(stack, workdir / "drills.json")
        wait_for(
            "first archived trades",
            lambda: len(drills.archived_newest()) == len(drills.pipe.symbols),
            timeout_s=60,
        )
        yield drills
    print(f"\nfault drill measurements: {drills.report_path}\n{json.dumps([r.name for r in drills.records])}")


def assert_nothing_lost(record: DrillRecord) -> None:
    outcome = record.outcome
    assert outcome["trades_checked"] > 0
    assert (missing_count(record), duplicated_count(record)) == (0, 0), (
        record.name, outcome["missing"], outcome["duplicated"], record.health,
    )
    assert all(v == [] for v in outcome["unknown"].values()), outcome["unknown"]
    assert all(v == [] for v in outcome["mismatched"].values()), outcome["mismatched"]
    assert outcome["duplicate_orders"] == [], outcome["duplicate_orders"]


@pytest.mark.timeout(240)
def test_undisturbed_pipeline_archives_every_trade_once(bench: DrillBench) -> None:
    # Arrange / Act: no fault; the control for the drills after it.
    since, before = time.time(), bench.pids()
    time.sleep(5)
    record = bench.settle(DrillRecord("baseline", "no fault, 5 s of flow"), since, before)

    # Assert
    assert_nothing_lost(record)
    assert record.restarted == {}


@pytest.mark.timeout(120)
def test_one_dropped_connection_is_replaced_and_its_peer_keeps_every_trade(bench: DrillBench) -> None:
    # Arrange
    since, before = time.time(), bench.pids()
    conns = bench.feed_connections()
    assert len(conns) == 2, conns

    # Act
    bench.pipe.faults({"drop": {"connections": [conns[0]["id"]]}})
    _, reconnect_s = wait_for(
        "a replacement connection",
        lambda: len(bench.feed_connections()) == 2 and conns[0]["id"] not in {c["id"] for c in bench.feed_connections()},
        timeout_s=30,
    )
    record = DrillRecord("drop one connection", "venue aborts one of the feed's 2 websockets (TCP, no close frame)")
    record.measured = {"reconnect_s": round(reconnect_s, 2), "catch_up_s": bench.catch_up_s()}
    record = bench.settle(record, since, before)

    # Assert
    assert_nothing_lost(record)
    kinds = health_kinds(record)
    assert kinds.get("disconnect", 0) >= 1 and kinds.get("connect", 0) >= 1, record.health


@pytest.mark.timeout(120)
def test_one_stalled_connection_is_replaced_and_its_peer_keeps_every_trade(bench: DrillBench) -> None:
    # Arrange
    since, before = time.time(), bench.pids()
    conns = bench.feed_connections()
    assert len(conns) == 2, conns

    # Act: the socket stays open but sends nothing for 10 s.
    bench.pipe.faults({"stall": {"connections": [conns[1]["id"]], "seconds": OUTAGE_S}})
    detect_s = bench.wait_health(since, "stalled", timeout_s=30)
    time.sleep(max(0.0, OUTAGE_S - detect_s))
    record = DrillRecord("stall one connection", f"venue sends nothing on one of the 2 websockets for {OUTAGE_S:.0f} s")
    record.measured = {"stalled_event_after_s": detect_s, "catch_up_s": bench.catch_up_s()}
    record = bench.settle(record, since, before)

    # Assert
    assert_nothing_lost(record)
    assert health_kinds(record).get("stalled", 0) >= 1, record.health


@pytest.mark.timeout(150)
def test_broker_frozen_for_10s_producers_buffer_and_deliver_every_trade_once(bench: DrillBench) -> None:
    # Arrange
    since, before = time.time(), bench.pids()
    broker = bench.broker_pid()

    # Act: SIGSTOP the broker (unreachable: connections hang), SIGCONT after 10 s.
    bench.freeze(broker, OUTAGE_S)
    catch_up_s = bench.catch_up_s()
    record = DrillRecord("broker frozen 10 s", f"SIGSTOP the Kafka broker, SIGCONT after {OUTAGE_S:.0f} s")
    record.measured = {
        "catch_up_s": catch_up_s,
        "backpressure_event_archived_after_resume_s": round(catch_up_s + bench.wait_health(since, "backpressure", timeout_s=90), 2),
    }
    record = bench.settle(record, since, before)

    # Assert
    assert_nothing_lost(record)
    buffered = [h for h in record.health if h["kind"] == "backpressure"]
    assert buffered and max(h["count"] for h in buffered) > 0, record.health
    record.measured["buffered_records_peak"] = max(h["count"] for h in buffered)
    bench.write_report()
    assert health_kinds(record).get("dropped", 0) == 0, record.health


@pytest.mark.timeout(150)
def test_warehouse_stopped_for_10s_sink_retries_and_archives_every_trade_once(bench: DrillBench) -> None:
    # Arrange
    since, before = time.time(), bench.pids()

    # Act: supervisord stops the warehouse (connections refused), starts it 10 s later.
    bench.supervisor.stop("warehouse")
    wait_for("warehouse stopped", lambda: bench.stack.pid("warehouse") == 0, timeout_s=30)
    time.sleep(OUTAGE_S)
    bench.supervisor.start("warehouse")
    _, healthy_s = wait_for("warehouse healthy", lambda: bench.healthy("warehouse"), timeout_s=60)
    record = DrillRecord("warehouse stopped 10 s", f"supervisorctl stop warehouse, start after {OUTAGE_S:.0f} s")
    record.measured = {"warehouse_healthy_after_start_s": round(healthy_s, 2), "catch_up_s": bench.catch_up_s()}
    record = bench.settle(record, since, before)

    # Assert
    assert_nothing_lost(record)
    assert bench.healthy("sink")


@pytest.mark.timeout(150)
@pytest.mark.parametrize("service", OURS)
def test_killed_service_is_restarted_by_supervision_and_nothing_is_lost_or_doubled(
    bench: DrillBench, service: str
) -> None:
    # Arrange: the executor is killed while it has an order working on the venue, if one comes within 30 s
    since, before = time.time(), bench.pids()
    working = bench.wait_working_order() if service == "executor" else None

    # Act
    killed_at = time.monotonic()
    old = bench.stack.kill9(service)
    new = bench.stack.wait_restarted(service, old, timeout_s=90)
    record = DrillRecord(f"kill -9 {service}", f"SIGKILL the {service} process; supervisord restarts it")
    record.measured = {"restart_healthy_s": round(time.monotonic() - killed_at, 2), "catch_up_s": bench.catch_up_s()}
    if working is not None:
        record.measured["open_orders_at_kill"] = working
    record = bench.settle(record, since, before)

    # Assert
    assert new != old and record.restarted.get(service) == [old, new], record.restarted
    assert_nothing_lost(record)
    if service == "feed":
        assert health_kinds(record).get("connect", 0) >= 2, record.health


@pytest.mark.timeout(120)
def test_all_connections_dropped_feed_reconnects_and_keeps_every_trade(bench: DrillBench) -> None:
    # Arrange
    since, before = time.time(), bench.pids()
    conns = bench.feed_connections()
    old_ids = {c["id"] for c in conns}

    # Act
    bench.pipe.faults({"drop": {"connections": sorted(old_ids)}})
    _, reconnect_s = wait_for(
        "replacement connections",
        lambda: len(bench.feed_connections()) == 2 and not old_ids & {c["id"] for c in bench.feed_connections()},
        timeout_s=30,
    )
    record = DrillRecord("drop all connections", "venue aborts both of the feed's websockets at once")
    record.measured = {"reconnect_s": round(reconnect_s, 2), "catch_up_s": bench.catch_up_s()}
    record = bench.settle(record, since, before)

    # Assert
    assert health_kinds(record).get("disconnect", 0) >= 2, record.health
    assert_nothing_lost(record)


@pytest.mark.timeout(120)
def test_all_connections_stalled_for_10s_feed_recovers_and_keeps_every_trade(bench: DrillBench) -> None:
    # Arrange
    since, before = time.time(), bench.pids()
    conns = bench.feed_connections()

    # Act
    bench.pipe.faults({"stall": {"connections": [c["id"] for c in conns], "seconds": OUTAGE_S}})
    time.sleep(OUTAGE_S)
    record = DrillRecord("stall all connections", f"venue sends nothing on both websockets for {OUTAGE_S:.0f} s")
    record.measured = {"catch_up_s": bench.catch_up_s()}
    record = bench.settle(record, since, before)

    # Assert
    kinds = health_kinds(record)
    assert kinds.get("gap", 0) + kinds.get("stalled", 0) >= 1, record.health
    assert_nothing_lost(record)
