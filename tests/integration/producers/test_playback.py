"""`tickpipe playback` on a recording made from the simulated exchange: same parser and book code
as live, the exchange's final book reproduced; `--to-kafka` publishes, bad lines go to dlq."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.serde import AvroSerde
from schemas.topics import Topic
from tests.integration.producers.conftest import Broker, consume_all

FIXTURES = Path(__file__).parents[2] / "fixtures" / "binance"
RECORDING = FIXTURES / "sim_recording.jsonl"
TICKPIPE = str(Path(sys.executable).parent / "tickpipe")


def _playback(*args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    out = subprocess.run([TICKPIPE, "playback", *args], capture_output=True, timeout=60, env=env, check=True)
    return [orjson.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.timeout(60)
def test_playback_prints_normalized_records_and_reproduces_the_exchange_final_books() -> None:
    # Act
    lines = _playback(str(RECORDING), "--venue", "binance", "--final-books", "10")
    # Assert: every record line is its Avro record (plus "type"), decimals as strings
    serde = AvroSerde()
    records = [r for r in lines if r["type"] != "book"]
    for r in records:
        fields = {k: v for k, v in r.items() if k != "type"}
        assert serde.decode_as(r["type"], serde.encode(r["type"], fields)) == fields
    final = orjson.loads((FIXTURES / "sim_recording_final.json").read_bytes())
    books = {r["symbol"]: r for r in lines if r["type"] == "book"}
    assert set(books) == set(final)
    for symbol, truth in final.items():
        book = books[symbol]
        assert book["venue"] == "binance"
        assert (book["last_update_id"], book["bids"], book["asks"]) == (truth["last_update_id"], truth["bids"], truth["asks"])
        trade_ids = [r["trade_id"] for r in records if r["type"] == "Trade" and r["symbol"] == symbol]
        assert trade_ids == list(range(trade_ids[0], truth["last_trade_id"] + 1))
        deltas = [r for r in records if r["type"] == "BookDelta" and r["symbol"] == symbol]
        assert deltas[0]["snapshot"] and not any(d["snapshot"] for d in deltas[1:])
        assert all(isinstance(level["price"], str) for d in deltas for level in d["bids"] + d["asks"])


@pytest.mark.timeout(60)
def test_playback_is_deterministic() -> None:
    assert _playback(str(RECORDING), "--final-books", "5") == _playback(str(RECORDING), "--final-books", "5")


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_playback_to_kafka_publishes_records_and_sends_bad_frames_to_dlq_with_raw_text_and_reason(
    own_broker: Broker, tmp_path: Path
) -> None:
    # Arrange: the recording with bad frames spliced in after the snapshots
    lines = RECORDING.read_bytes().splitlines()
    url = orjson.loads(lines[0])["url"]
    t = orjson.loads(lines[-1])["t"]
    bad = [
        b'{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"12,5","q":"1","T":1,"m":true,"M":true}',
        b'{"stream":"x","data":[1]}',
        b"\xff not json",
        b'{"e":"trade","E":1,"s":"DOGEUSDT","t":1,"p":"1","q":"1","T":1,"m":true,"M":true}',
        b'{"e":"kline","s":"BTCUSDT"}',
    ]
    spliced = lines + [
        orjson.dumps({"t": t + i + 1, "kind": "ws", "url": url, "data": b.decode("utf-8", "replace")}) for i, b in enumerate(bad)
    ]
    path = tmp_path / "with_bad_frames.jsonl"
    path.write_bytes(b"\n".join(spliced) + b"\n")
    env = {**os.environ, "TICKPIPE_KAFKA__BOOTSTRAP": own_broker.kafka.bootstrap}
    # Act
    subprocess.run([TICKPIPE, "playback", str(path), "--venue", "binance", "--to-kafka"], env=env, timeout=60, check=True)
    # Assert
    printed = _playback(str(RECORDING))
    trades = consume_all(own_broker.kafka, Topic.TRADES, 1)
    assert sorted(r["trade_id"] for _, r in trades) == sorted(r["trade_id"] for r in printed if r["type"] == "Trade")
    dlq = [r for _, r in consume_all(own_broker.kafka, Topic.DLQ, len(bad))]
    assert len(dlq) == len(bad)
    by_raw = {d["raw"]: d for d in dlq}
    assert by_raw[bad[0]]["error"].startswith("invalid decimal in p")
    assert "not a JSON object" in by_raw[bad[1]]["error"]
    assert "unknown symbol 'DOGEUSDT'" in by_raw[bad[3]]["error"]
    assert "unknown frame type 'kline'" in by_raw[bad[4]]["error"]
    assert all(d["stage"] == "feed" and d["venue"] == "binance" and d["source_topic"] == url for d in dlq)
