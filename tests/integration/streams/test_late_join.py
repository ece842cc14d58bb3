"""A streams worker started mid-stream has the feed's full book from its first features (md.book.snapshots).

The feed runs on the simulated exchange; the worker joins well after the feed's only resync (its
start), with a short lookback, so md.book from where it reads holds no snapshot: its books can only
come from md.book.snapshots. The expected books come from replaying md.book from its beginning here,
with a dict per side, not from the worker or the order book it uses.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from infra.broker import free_port
from infra.processes import stop_process
from infra.settings import environ_without_settings
from infra.topics import read_to_end
from schemas.serde import AvroSerde
from schemas.topics import Topic
from sim_exchange.process import SimExchangeProcess
from tests.integration.streams.harness import TICKPIPE, fresh_broker, start_worker, stop
from tests.polling import wait_for

pytestmark = pytest.mark.integration

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
APP_ID = "late"
LOOKBACK_MS = 3000
JOIN_AFTER_S = 30.0  # as the issue asks: 30 s into the run

Book = tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]


def _start_feed(bootstrap: str, sim: SimExchangeProcess, tmp: Path, port: int) -> subprocess.Popen:
    env = environ_without_settings()
    env.update({"TICKPIPE_KAFKA__BOOTSTRAP": bootstrap, "TICKPIPE_FEED__BOOK_SNAPSHOT_INTERVAL_S": "1"})
    log = open(tmp / "feed.log", "wb")  # noqa: SIM115 (owned by the child)
    return subprocess.Popen(
        [TICKPIPE, "feed", "binance", "--symbols", ",".join(SYMBOLS), "--connections", "1", "--ws-url", sim.ws_url,
         "--rest-url", sim.rest_url, "--metrics-port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)


def _feed_live(port: int) -> bool:
    try:
        health = requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
    except requests.RequestException:
        return False
    return health.status_code == 200 and all(s["book"] == "live" for s in health.json()["symbols"].values())


def _records(bootstrap: str, topic: str) -> list[Any]:
    return read_to_end(bootstrap, topic, timeout_s=30)


def _first_features(bootstrap: str, serde: AvroSerde) -> dict[str, dict[str, Any]]:
    first: dict[str, dict[str, Any]] = {}
    for msg in _records(bootstrap, Topic.FEATURES_BOOK.value):
        rec = serde.decode(msg.value())[1]
        if rec["symbol"] not in first or rec["update_id"] < first[rec["symbol"]]["update_id"]:
            first[rec["symbol"]] = rec
    return first


def _replay(deltas: list[dict[str, Any]]) -> dict[str, dict[int, Book]]:
    """The feed's book of each symbol after every md.book record, by update id (snapshot = replace, qty 0 = gone)."""
    books: dict[str, dict[int, Book]] = defaultdict(dict)
    current: dict[str, Book] = {}
    for d in deltas:
        bids, asks = ({}, {}) if d["snapshot"] else current[d["symbol"]]
        bids, asks = dict(bids), dict(asks)
        for side, levels in ((bids, d["bids"]), (asks, d["asks"])):
            for level in levels:
                price, qty = Decimal(level["price"]), Decimal(level["qty"])
                if qty == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        current[d["symbol"]] = (bids, asks)
        books[d["symbol"]][d["last_update_id"]] = (bids, asks)
    return books


def _imbalance(bids: dict[Decimal, Decimal], asks: dict[Decimal, Decimal], n: int) -> float:
    b = sum(float(bids[p]) for p in sorted(bids, reverse=True)[:n])
    a = sum(float(asks[p]) for p in sorted(asks)[:n])
    return (b - a) / (b + a)


def _log_time_ns(log: Path, message: str) -> int | None:
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("msg", "").startswith(message):
            return round(datetime.fromisoformat(entry["ts"]).timestamp() * 1000) * 1_000_000
    return None


@pytest.mark.timeout(240)
def test_a_worker_started_mid_stream_has_the_feeds_full_book_from_its_first_features(
    tmp_path: Path, sim_exchange_factory
) -> None:
    serde = AvroSerde()
    sim = sim_exchange_factory(seed=21, symbols=",".join(SYMBOLS), events_per_s=200)
    with fresh_broker(tmp_path) as kafka:
        feed_port = free_port()
        feed = _start_feed(kafka.bootstrap, sim, tmp_path, feed_port)
        worker = None
        try:
            # Arrange: the feed syncs once, then runs; the worker joins long after, with a short lookback
            wait_for(lambda: _feed_live(feed_port), 60, "feed books live")
            time.sleep(JOIN_AFTER_S)
            joined_ns = time.time_ns()
            worker = start_worker(kafka, APP_ID, tmp_path, APP_ID, 5000,
                                  extra_env={"TICKPIPE_KAFKA__BOOK_SNAPSHOT_LOOKBACK_MS": str(LOOKBACK_MS)})
            # Act
            first = wait_for(lambda: (f := _first_features(kafka.bootstrap, serde)).keys() >= set(SYMBOLS) and f,
                             90, "book features of both symbols", interval_s=1.0)
            seeds = requests.get(worker.metrics_url, timeout=5).text
        finally:
            if worker is not None:
                stop(worker)
            stop_process(feed, timeout_s=30)
        deltas = [serde.decode(m.value())[1] for m in _records(kafka.bootstrap, Topic.BOOK.value)]
        states = [(m.key().decode().split(":")[1], orjson.loads(m.value()))
                  for m in _records(kafka.bootstrap, f"{APP_ID}-book-state-changelog") if m.value() is not None]
    books = _replay(deltas)
    joined_log_ns = _log_time_ns(tmp_path / f"worker-{APP_ID}.log", "joined md.book late: books start")
    # Assert: the worker joined after the feed's last resync and did not read md.book from its beginning
    applied = re.search(r'tickpipe_streams_book_seeds_total\{result="applied"\} ([0-9.]+)', seeds)
    assert applied is not None and float(applied.group(1)) >= len(SYMBOLS), seeds
    for symbol in SYMBOLS:
        resyncs = [d for d in deltas if d["symbol"] == symbol and d["snapshot"]]
        assert len(resyncs) == 1 and resyncs[0]["ts_recv"] < joined_ns - JOIN_AFTER_S * 1e9 + 5e9, resyncs
        assert first[symbol]["ts_recv"] > joined_ns - LOOKBACK_MS * 1_000_000 - 2e9, (first[symbol], joined_ns)
    # Assert: the first features are those of the feed's whole book at their update id
    for symbol in SYMBOLS:
        bids, asks = books[symbol][first[symbol]["update_id"]]
        assert len(bids) >= 10 and len(asks) >= 10, "the book is too shallow to tell a whole book from a part"
        best_bid, best_ask = float(max(bids)), float(min(asks))
        feats = first[symbol]
        assert feats["mid"] == pytest.approx((best_bid + best_ask) / 2)
        assert feats["spread"] == pytest.approx(best_ask - best_bid)
        assert feats["imbalance_5"] == pytest.approx(_imbalance(bids, asks, 5))
        assert feats["imbalance_10"] == pytest.approx(_imbalance(bids, asks, 10))
    # Assert: every book the worker saved (once per batch) is level for level the feed's book at its update id
    for symbol in SYMBOLS:
        saved = [state["book"] for sym, state in states if sym == symbol and state["book"]["synced"]]
        assert saved, f"no saved book of {symbol}"
        for b in saved:
            want_bids, want_asks = books[symbol][b["last_update_id"]]
            assert {Decimal(p): Decimal(q) for p, q in b["bids"]} == want_bids
            assert {Decimal(p): Decimal(q) for p, q in b["asks"]} == want_asks
    # Measured: worker process start -> first full-book features, and the seek (late join) -> them
    to_features = {s: (first[s]["ts_emit"] - joined_ns) / 1e9 for s in SYMBOLS}
    from_seek = {s: (first[s]["ts_emit"] - joined_log_ns) / 1e9 for s in SYMBOLS} if joined_log_ns else None
    print(f"late join: worker start -> first features {to_features} s; seek -> first features {from_seek} s")
    assert joined_log_ns is not None and all(v < 3.0 for v in from_seek.values()), from_seek
