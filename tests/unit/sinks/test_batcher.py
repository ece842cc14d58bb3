"""Batching by size and age, offset ranges, commit positions, revocation."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sinks.batcher import Batcher

MS = 1_000_000


def test_batch_is_due_at_max_rows() -> None:
    batcher = Batcher(max_rows=3, max_age_ms=1000)
    for offset in range(2):
        batcher.add_row("md_trades", ("r", "md.trades", 0, offset), "md.trades", 0, offset, now_ns=0)
    assert not batcher.due(0)
    batcher.add_row("md_trades", ("r", "md.trades", 0, 2), "md.trades", 0, 2, now_ns=0)
    assert batcher.due(0)


def test_batch_is_due_when_its_first_message_is_max_age_old() -> None:
    batcher = Batcher(max_rows=100, max_age_ms=500)
    assert not batcher.due(10**12)  # empty batches are never due
    batcher.add_row("t", ("r", "md.trades", 0, 0), "md.trades", 0, 0, now_ns=1000 * MS)
    assert not batcher.due(1499 * MS)
    assert batcher.due(1500 * MS)


def test_commit_positions_cover_rows_dead_letters_and_skipped_messages() -> None:
    batcher = Batcher(max_rows=100, max_age_ms=500)
    batcher.add_skipped("md.trades", 1, 10, 0)
    batcher.add_row("md_trades", ("r", "md.trades", 1, 11), "md.trades", 1, 11, 0)
    batcher.add_dead_letter("md.trades", 1, 12, b"x", "bad", 0)
    batcher.add_row("md_bbo", ("r", "md.bbo", 0, 5), "md.bbo", 0, 5, 0)
    batch = batcher.take()
    assert batch.offsets == {("md.trades", 1): (10, 12), ("md.bbo", 0): (5, 5)}
    assert batch.commit_positions() == {("md.trades", 1): 13, ("md.bbo", 0): 6}
    assert batch.row_count == 3 and batch.messages == 4
    assert batcher.empty and not batcher.due(10**15)


def test_dedup_token_depends_on_table_and_offset_ranges_only() -> None:
    def build() -> Batcher:
        b = Batcher(10, 10)
        b.add_row("md_trades", ("r", "md.trades", 0, 3), "md.trades", 0, 3, 0)
        b.add_row("md_trades", ("r", "md.trades", 0, 4), "md.trades", 0, 4, 99)
        return b

    first, second = build().take({"md.trades": "id1"}), build().take({"md.trades": "id1"})
    assert first.dedup_token("md_trades") == second.dedup_token("md_trades") == "md_trades:md.trades@id1/0/3-4"
    assert first.dedup_token("dead_letters") != first.dedup_token("md_trades")
    # the same offsets of a recreated topic are new messages, not a retry
    assert build().take({"md.trades": "id2"}).dedup_token("md_trades") != first.dedup_token("md_trades")


def test_revoked_partitions_are_dropped_with_their_rows() -> None:
    batcher = Batcher(10, 10)
    batcher.add_row("md_trades", ("r", "md.trades", 0, 1), "md.trades", 0, 1, 0)
    batcher.add_row("md_trades", ("r", "md.trades", 1, 1), "md.trades", 1, 1, 0)
    batcher.add_dead_letter("md.trades", 1, 2, b"", "e", 0)
    batcher.drop_partitions({("md.trades", 1)})
    batch = batcher.take()
    assert batch.rows == {"md_trades": [("r", "md.trades", 0, 1)]}
    assert batch.dead_letters == [] and list(batch.offsets) == [("md.trades", 0)]


def test_non_positive_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        Batcher(0, 10)


def _block(partitions: list[int], offsets: list[int]) -> pa.Table:
    return pa.table({"_topic": ["md.trades"] * len(offsets), "_partition": pa.array(partitions, pa.int32()),
                     "_offset": pa.array(offsets, pa.int64())})


def test_column_wise_blocks_count_as_rows_and_extend_offset_ranges_either_way() -> None:
    batcher = Batcher(max_rows=5, max_age_ms=1000)
    batcher.add_row("md_trades", ("r", "md.trades", 0, 7), "md.trades", 0, 7, 0)
    batcher.add_block("md_trades", _block([0, 0, 1], [5, 6, 9]), "md.trades",
                      np.array([0, 0, 1]), np.array([5, 6, 9]), 0)
    assert batcher.pending_rows == 4 and not batcher.due(0)
    batcher.add_block("md_trades", _block([1], [8]), "md.trades", np.array([1]), np.array([8]), 0)
    assert batcher.due(0)
    batch = batcher.take()
    # the first offset is the lowest seen, whatever the order the paths added them in
    assert batch.offsets == {("md.trades", 0): (5, 7), ("md.trades", 1): (8, 9)}
    assert batch.row_count == 5 and batch.messages == 5


def test_revoked_partitions_are_dropped_from_column_wise_blocks_too() -> None:
    batcher = Batcher(10, 10)
    batcher.add_block("md_trades", _block([0, 1, 1], [1, 1, 2]), "md.trades",
                      np.array([0, 1, 1]), np.array([1, 1, 2]), 0)
    batcher.add_block("md_trades", _block([1], [3]), "md.trades", np.array([1]), np.array([3]), 0)
    batcher.drop_partitions({("md.trades", 1), ("md.bbo", 0)})
    batch = batcher.take()
    assert [b.to_pylist() for b in batch.blocks["md_trades"]] == [[{"_topic": "md.trades", "_partition": 0, "_offset": 1}]]
    assert batch.row_count == 1 and list(batch.offsets) == [("md.trades", 0)]
