"""`tickpipe feed binance` against the simulated exchange and a real broker: publish, consume back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from infra.broker import free_port
from schemas.topics import Topic
from sim_exchange.process import SimExchangeProcess
from tests.integration.producers.checks import (
    assert_deltas_chain,
    assert_trades_match_exchange,
    trades_by_symbol,
)
from tests.integration.producers.conftest import Broker, consume_all

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_feed_command_publishes_trades_books_bbos_and_health_then_stops_cleanly_on_sigterm(
    own_broker: Broker, sim_exchange: SimExchangeProcess, tmp_path: Path
) -> None:
    # Arrange
    port = free_port()
    env = {**os.environ, "TICKPIPE_KAFKA__BOOTSTRAP": own_broker.kafka.bootstrap}
    log = open(tmp_path / "feed.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "tickpipe"), "feed", "binance", "--symbols", ",".join(SYMBOLS),
         "--connections", "2", "--ws-url", sim_exchange.ws_url, "--rest-url", sim_exchange.rest_url,
         "--metrics-port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        # Act
        deadline = time.monotonic() + 40  # generous: the shared machine can be very slow
        health = None
        while time.monotonic() < deadline:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
                if health.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        assert health is not None and health.status_code == 200, (tmp_path / "feed.log").read_text()[-2000:]
        time.sleep(4)
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        last_ids = {s: sim_exchange.trades(s)[-1]["id"] for s in SYMBOLS}
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    # Assert: health said both connections up and both books true
    body = health.json()
    assert len(body["connections"]) == 2 and all(s["book"] == "live" for s in body["symbols"].values())
    for name in ("tickpipe_feed_frames_total", "tickpipe_feed_venue_lag_seconds", "tickpipe_feed_duplicates_dropped_total",
                 "tickpipe_feed_book_buffer_depth", "tickpipe_feed_resyncs_total"):
        assert name in metrics
    assert 'connection="c0"' in metrics and 'connection="c1"' in metrics
    trades = trades_by_symbol(consume_all(own_broker.kafka, Topic.TRADES, 10))
    for symbol in SYMBOLS:
        assert_trades_match_exchange(trades[symbol], sim_exchange, symbol, last_ids[symbol])
    book = consume_all(own_broker.kafka, Topic.BOOK, 4)
    assert all(k == f"binance:{d['symbol']}".encode() for k, d in book)
    assert_deltas_chain([d for _, d in book])
    bbo = consume_all(own_broker.kafka, Topic.BBO, 2)
    for symbol in SYMBOLS:
        ids = [b["update_id"] for _, b in bbo if b["symbol"] == symbol]
        assert ids and ids == sorted(set(ids)), "BBO update ids repeat or go back"
    kinds = {e["kind"] for _, e in consume_all(own_broker.kafka, Topic.HEALTH, 4)}
    assert {"connect", "resync", "recovered", "disconnect"} <= kinds
