"""Signal intake decisions: which signal becomes a run, when it is stale, what is committed, where reading starts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka import Message
from hypothesis import given
from hypothesis import strategies as st

from executor.commands import Side
from executor.intake import (
    OtherVenue,
    assigned_start,
    commit_positions,
    dlq_kind,
    parse_signal,
    replay_caught_up,
    stale_reason,
)
from executor.trader import SignalRun
from schemas.serde import AvroSerde

SERDE = AvroSerde()
NOW = 1_700_000_000_000_000_000
MS = 1_000_000


def _signal(**changes: Any) -> dict[str, Any]:
    record = {
        "signal_id": "s1", "venue": "binance", "symbol": "BTCUSDT", "side": "buy", "strength": 1.0,
        "target": "0.001", "urgency": 1.0, "model": "test@1", "expires_at": NOW + 30_000 * MS,
        "reference_price": "0", "inputs": [], "ts_event": NOW, "ts_recv": NOW, "ts_emit": NOW,
    }
    return record | changes


def _msg(value: bytes, partition: int = 1, offset: int = 5) -> Message:
    return Message(topic="signals", partition=partition, offset=offset, value=value)


def _run(partition: int, offset: int, done: bool) -> SignalRun:
    return SignalRun(_signal(), partition, offset, NOW, Side.BUY, Decimal("0.001"), done=done)


def test_a_valid_signal_becomes_a_run_at_its_partition_and_offset() -> None:
    run = parse_signal(SERDE, _msg(SERDE.encode("Signal", _signal())), NOW, "binance", {"BTCUSDT"})

    assert isinstance(run, SignalRun)
    assert (run.partition, run.offset, run.received_at, run.side, run.target) == (1, 5, NOW, Side.BUY, Decimal("0.001"))
    assert run.signal_id == "s1" and not run.started


@pytest.mark.parametrize(("changes", "symbols", "reason"), [
    ({}, {"ETHUSDT"}, "unknown symbol 'BTCUSDT'"),
    ({"target": "lots"}, {"BTCUSDT"}, "malformed: target 'lots' / reference_price '0'"),
    ({"reference_price": "x"}, {"BTCUSDT"}, "malformed: target '0.001' / reference_price 'x'"),
    ({"target": "0"}, {"BTCUSDT"}, "malformed: target '0' must be a positive decimal"),
    ({"target": "Infinity"}, {"BTCUSDT"}, "malformed: target 'Infinity' must be a positive decimal"),
])
def test_a_signal_the_executor_cannot_act_on_is_refused_with_the_reason(
    changes: dict[str, Any], symbols: set[str], reason: str
) -> None:
    assert parse_signal(SERDE, _msg(SERDE.encode("Signal", _signal(**changes))), NOW, "binance", symbols) == reason


def test_another_venues_signal_is_skipped_not_refused() -> None:
    parsed = parse_signal(SERDE, _msg(SERDE.encode("Signal", _signal(venue="kraken", symbol="BTC/USD"))), NOW,
                          "binance", {"BTCUSDT"})

    assert parsed == OtherVenue("kraken")


def test_undecodable_bytes_are_malformed() -> None:
    reason = parse_signal(SERDE, _msg(b"\x00not avro"), NOW, "binance", {"BTCUSDT"})

    assert isinstance(reason, str) and reason.startswith("malformed: ") and dlq_kind(reason) == "malformed"


def test_the_dlq_kind_is_the_first_word_of_the_reason() -> None:
    assert [dlq_kind(r) for r in ("malformed: x", "unknown symbol 'X'", "stale: 3 ms old")] == [
        "malformed", "unknown", "stale"]


def test_a_signal_is_stale_once_expired_or_older_than_the_max_age() -> None:
    fresh = _signal(ts_emit=NOW - 4_000 * MS, expires_at=NOW + 1)

    assert stale_reason(fresh, NOW, 5_000) is None
    assert stale_reason(_signal(expires_at=NOW - 2 * MS), NOW, 5_000) == "stale: expired 2 ms ago"
    assert stale_reason(_signal(expires_at=NOW), NOW, 5_000) == "stale: expired 0 ms ago"
    assert stale_reason(_signal(ts_emit=NOW - 6_000 * MS), NOW, 5_000) == "stale: 6000 ms old, max 5000 ms"


def test_the_commit_position_is_the_lowest_unfinished_offset_else_past_the_last_seen() -> None:
    runs = {(0, 3): _run(0, 3, done=True), (0, 4): _run(0, 4, done=False), (0, 6): _run(0, 6, done=False),
            (1, 9): _run(1, 9, done=True)}

    assert commit_positions({0: 7, 1: 9, 2: 2}, runs, {}) == {0: 4, 1: 10, 2: 3}


def test_nothing_is_committed_again_or_backwards() -> None:
    runs = {(0, 4): _run(0, 4, done=False)}

    assert commit_positions({0: 7, 1: 9}, runs, {0: 4, 1: 12}) == {}


@given(st.dictionaries(st.integers(0, 3), st.booleans(), max_size=4).flatmap(
    lambda done_at: st.tuples(st.just(done_at), st.integers(max(done_at, default=0), 20))))
def test_the_commit_position_never_passes_an_unfinished_run(case: tuple[dict[int, bool], int]) -> None:
    done_at, last_seen = case
    runs = {(0, off): _run(0, off, done) for off, done in done_at.items()}

    position = commit_positions({0: last_seen}, runs, {}).get(0)

    assert position is not None
    assert all(off >= position for off, done in done_at.items() if not done)
    assert position == last_seen + 1 or not runs[(0, position)].done


def test_a_new_group_on_latest_starts_at_the_end_and_a_known_group_where_it_committed() -> None:
    assert assigned_start(-1001, 40, "latest") == 40
    assert assigned_start(-1001, 40, "earliest") is None
    assert assigned_start(12, 40, "latest") is None


def test_a_replay_is_caught_up_once_every_partition_is_read_to_its_end_at_start() -> None:
    assert replay_caught_up({0: 9, 1: 4}, {0: 10, 1: 5})
    assert not replay_caught_up({0: 9}, {0: 10, 1: 5})
    assert replay_caught_up({}, {0: 0})  # an empty partition is read
