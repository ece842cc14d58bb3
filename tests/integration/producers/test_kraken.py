"""Kraken WebSocket v2 against the simulator's /v2: books, trades, checksum faults, redundancy, dlq, record/playback.

The truth is the simulator's own state (its book, its trade list), never the feed's code.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.topics import Topic
from sim_exchange.process import SimExchangeProcess
from tests.integration.producers.conftest import Broker, RunningFeed, consume_all
from tests.integration.producers.venue_checks import (
    assert_book_equals_exchange,
    assert_trades_equal_exchange,
    rebuilt_book,
)

PAIRS = {"BTC/USDT": "BTCUSDT", "ETH/USDT": "ETHUSDT"}
DEPTH = 10  # the adapter's subscribed book depth (all of it under Kraken's checksum)
FAULT_EVERY_S = 3.0
DURATION_S = float(os.environ.get("FEED_TEST_DURATION_S", "60"))
TICKPIPE = str(Path(sys.executable).parent / "tickpipe")


def _wait_connections(sim: SimExchangeProcess, n: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(sim.connections()) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(sim.connections()) >= n


def _by_symbol(records: list[tuple[bytes, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for key, rec in records:
        assert key == f"kraken:{rec['symbol']}".encode()
        out[rec["symbol"]].append(rec)
    return out


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_kraken_books_and_trades_equal_the_exchange_after_drops_stalls_lost_and_corrupted_book_messages(
    own_broker: Broker,
    sim_exchange_factory: Callable[..., SimExchangeProcess],
    start_feed: Callable[..., RunningFeed],
) -> None:
    # Arrange: two connections; every few seconds one of them is dropped, stalled, loses a book
    # message or gets a wrong checksum
    sim = sim_exchange_factory(seed=23, symbols=",".join(PAIRS.values()), events_per_s=300)
    feed = start_feed(own_broker.kafka, sim.ws_url, sim.rest_url, list(PAIRS), venue="kraken",
                      connections=2, stall_timeout_s=0.5)
    _wait_connections(sim, 2)
    time.sleep(2)
    rng = random.Random(5)
    faults: list[str] = []
    # Act
    end = time.monotonic() + DURATION_S
    while time.monotonic() < end:
        time.sleep(FAULT_EVERY_S)
        conns = sim.connections()
        if len(conns) < 2:
            continue  # the previous victim is still reconnecting: never hit both
        victim = rng.choice(conns)["id"]
        kind = rng.choice(["drop", "stall", "depth_gap", "bad_checksum"])
        spec: dict[str, Any] = {"connections": victim}
        if kind == "stall":
            spec["seconds"] = 2.0
        hit = sim.set_faults({kind: spec})["applied"]
        assert hit and hit[0]["connections"] == [victim], hit
        faults.append(kind)
    # a lost or stalled message shows on the connection's next book message: let the flow run on
    # past the last fault's stall, then stop it
    time.sleep(4.0)
    sim.set_flow(paused=True)
    time.sleep(2.0)  # the last book messages and trades arrive
    last_ids = {s: sim.trades(s)[-1]["id"] for s in PAIRS.values()}
    stop_ns = time.time_ns()
    assert feed.stop() == 0
    # Assert: every kind of fault was exercised
    assert {"drop", "stall", "depth_gap", "bad_checksum"} <= set(faults), faults
    trades = _by_symbol(consume_all(own_broker.kafka, Topic.TRADES, 100))
    deltas = [d for _, d in consume_all(own_broker.kafka, Topic.BOOK, 10)]
    health = [e for _, e in consume_all(own_broker.kafka, Topic.HEALTH, 10)]
    for pair, engine_symbol in PAIRS.items():
        assert_trades_equal_exchange(trades[pair], sim, engine_symbol, last_ids[engine_symbol])
        assert len(trades[pair]) > 100
        assert_book_equals_exchange(rebuilt_book(deltas, pair), sim, engine_symbol, DEPTH)
    # a wrong or missed book message was detected on its connection, reported as a gap, and the
    # book continued from the other connection: never stale while the feed ran
    checks = [e for e in health if e["kind"] == "gap" and "fails the venue's check" in e["detail"]]
    assert len(checks) >= 2, [e["detail"] for e in health if e["kind"] != "connect"][:30]
    takeovers = [e for e in health if e["kind"] == "recovered" and "continued from connection" in e["detail"]]
    assert takeovers
    stale = [e for e in health if e["kind"] == "stale" and e["ts_recv"] < stop_ns]
    assert not stale, [e["detail"] for e in stale]
    assert not any(e["kind"] == "gap" and "trades" in e["detail"] for e in health)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_kraken_malformed_frames_and_refused_subscription_go_to_dlq_and_the_feed_stays_up(
    own_broker: Broker,
    sim_exchange_factory: Callable[..., SimExchangeProcess],
    start_feed: Callable[..., RunningFeed],
) -> None:
    # Arrange: one pair the venue does not list
    sim = sim_exchange_factory(seed=29, symbols="BTCUSDT", events_per_s=200)
    feed = start_feed(own_broker.kafka, sim.ws_url, sim.rest_url, ["BTC/USDT", "DOGE/ZZZ"], venue="kraken",
                      connections=1)
    _wait_connections(sim, 1)
    time.sleep(2)
    # Act: ten frames each preceded by a truncated copy of itself
    sim.set_faults({"malformed": {"connections": "all", "count": 10}})
    time.sleep(3)
    sim.set_flow(paused=True)
    time.sleep(1.5)
    last_id = sim.trades("BTCUSDT")[-1]["id"]
    assert feed.stop() == 0
    # Assert
    dlq = [r for _, r in consume_all(own_broker.kafka, Topic.DLQ, 11)]
    garbage = [d for d in dlq if d["error"].startswith("not JSON")]
    refused = [d for d in dlq if "subscribe refused: Currency pair not supported DOGE/ZZZ" in d["error"]]
    assert len(garbage) == 10, [d["error"] for d in dlq]
    assert refused
    assert all(d["venue"] == "kraken" and d["stage"] == "feed" and d["raw"] for d in dlq)
    trades = _by_symbol(consume_all(own_broker.kafka, Topic.TRADES, 10))
    assert_trades_equal_exchange(trades["BTC/USDT"], sim, "BTCUSDT", last_id)
    deltas = [d for _, d in consume_all(own_broker.kafka, Topic.BOOK, 10)]
    assert_book_equals_exchange(rebuilt_book(deltas, "BTC/USDT"), sim, "BTCUSDT", DEPTH)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_kraken_record_then_playback_reproduces_the_exchange_book(
    tmp_path: Path, sim_exchange_factory: Callable[..., SimExchangeProcess],
) -> None:
    # Arrange
    sim = sim_exchange_factory(seed=31, symbols="BTCUSDT,ETHUSDT", events_per_s=300)
    recording = tmp_path / "kraken.jsonl"
    recorder = subprocess.Popen([
        TICKPIPE, "record", "kraken", "--symbols", "BTC/USDT,ETH/USDT", "--out", str(recording),
        "--ws-url", sim.ws_url, "--rest-url", sim.rest_url, "--seconds", "8",
    ])
    try:
        time.sleep(5)
        sim.set_flow(paused=True)
        assert recorder.wait(30) == 0
    finally:
        if recorder.poll() is None:
            recorder.kill()
    # Act
    out = subprocess.run([TICKPIPE, "playback", str(recording), "--venue", "kraken", "--final-books", "10"],
                         capture_output=True, timeout=60, check=True)
    lines = [orjson.loads(line) for line in out.stdout.splitlines()]
    # Assert
    books = {b["symbol"]: b for b in lines if b["type"] == "book"}
    assert set(books) == set(PAIRS)
    for pair, engine_symbol in PAIRS.items():
        truth = sim.book(engine_symbol)
        assert [[Decimal(x) for x in lv] for lv in books[pair]["bids"]] == [[Decimal(x) for x in lv] for lv in truth["bids"][:10]]
        assert [[Decimal(x) for x in lv] for lv in books[pair]["asks"]] == [[Decimal(x) for x in lv] for lv in truth["asks"][:10]]
    assert sum(r["type"] == "Trade" for r in lines) > 10
    assert not any(r["type"] == "DeadLetter" for r in lines)
