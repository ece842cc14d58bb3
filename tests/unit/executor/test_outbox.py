"""Outbox routing: the key each record is published under and the DeadLetter of a refused message."""

from __future__ import annotations

from executor.outbox import dead_letter_record, record_key
from schemas.serde import AvroSerde
from schemas.topics import Topic, instrument_key


def test_order_and_fill_records_are_keyed_by_instrument() -> None:
    record = {"venue": "binance", "symbol": "BTCUSDT", "account": "a1"}

    assert record_key(Topic.ORDERS, record) == record_key(Topic.FILLS, record) == instrument_key("binance", "BTCUSDT")


def test_executor_events_are_keyed_by_account_so_they_stay_in_order() -> None:
    assert record_key(Topic.EXECUTOR_HEALTH, {"venue": "binance", "account": "a1", "symbol": ""}) == b"binance:a1"


def test_a_dead_letter_of_an_undecodable_message_has_no_instrument_and_encodes() -> None:
    record = dead_letter_record("signals", 2, 17, b"\x00raw", "malformed: x", 123)

    assert record == {"venue": "", "symbol": "", "stage": "executor", "source_topic": "signals", "partition": 2,
                      "offset": 17, "raw": b"\x00raw", "error": "malformed: x", "ts_event": 123, "ts_recv": 123}
    assert record_key(Topic.DLQ, record) == instrument_key("", "")
    assert AvroSerde().decode_as("DeadLetter", AvroSerde().encode("DeadLetter", record)) == record


def test_a_dead_letter_of_a_stale_signal_keeps_its_instrument() -> None:
    record = dead_letter_record("signals", 0, 3, b"sig", "stale: 9 ms old", 5, "binance", "ETHUSDT")

    assert (record["venue"], record["symbol"]) == ("binance", "ETHUSDT")
    assert record_key(Topic.DLQ, record) == instrument_key("binance", "ETHUSDT")
