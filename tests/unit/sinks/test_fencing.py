"""The pieces that let two sink instances archive a range once: per-partition tokens, blocks, metadata."""

from __future__ import annotations

import pyarrow as pa

from sinks.batcher import Batcher
from sinks.consumer import _INFLIGHT, _inflight_range
from sinks.ddl import DEAD_LETTERS
from sinks.writer import _per_partition


def _batch(partitions: dict[int, range]) -> Batcher:
    batcher = Batcher(1000, 1000)
    for partition, offsets in partitions.items():
        for offset in offsets:
            batcher.add_row("md_trades", ("r", "md.trades", partition, offset), "md.trades", partition, offset, 0)
    return batcher


def test_a_partitions_token_depends_on_its_own_range_only() -> None:
    # the instance that took partition 0 over batches it alone; its token must equal the old owner's
    mixed = _batch({0: range(3, 5), 1: range(7, 10)}).take({"md.trades": "id1"})
    alone = _batch({0: range(3, 5)}).take({"md.trades": "id1"})

    assert mixed.dedup_token("md_trades", {("md.trades", 0)}) == alone.dedup_token("md_trades")
    assert mixed.dedup_token("md_trades", {("md.trades", 0)}) != mixed.dedup_token("md_trades", {("md.trades", 1)})


def test_a_block_is_split_per_partition_into_single_chunk_inserts_with_their_tokens() -> None:
    batch = _batch({0: range(3, 5), 1: range(7, 10)}).take({"md.trades": "id1"})
    block = pa.concat_tables([
        pa.table({"_topic": ["md.trades"] * 2, "_partition": pa.array([0, 1], pa.int32()), "_offset": [3, 7]}),
        pa.table({"_topic": ["md.trades"] * 3, "_partition": pa.array([1, 0, 1], pa.int32()), "_offset": [8, 4, 9]}),
    ])

    inserts = _per_partition("md_trades", block, batch, {("md.trades", 0), ("md.trades", 1)})

    assert [(t, b.column("_offset").to_pylist(), tok) for t, b, tok in inserts] == [
        ("md_trades", [3, 4], "md_trades:md.trades@id1/0/3-4"),
        ("md_trades", [7, 8, 9], "md_trades:md.trades@id1/1/7-9"),
    ]
    assert all(b.column("_offset").num_chunks == 1 for _, b, _ in inserts)  # one block each


def test_dead_letters_are_split_by_topic_and_partition() -> None:
    batcher = _batch({0: range(3, 4)})
    batcher.add_dead_letter("md.trades", 0, 4, b"x", "bad", 0)
    batcher.add_dead_letter("md.trades", 2, 9, b"y", "bad", 0)
    batch = batcher.take({"md.trades": "id1"})
    letters = pa.table({"topic": ["md.trades", "md.trades"], "partition": pa.array([0, 2], pa.int32()),
                        "offset": [4, 9]})

    inserts = _per_partition(DEAD_LETTERS, letters, batch, {("md.trades", 0), ("md.trades", 2)})

    assert [(b.column("offset").to_pylist(), tok) for _, b, tok in inserts] == [
        ([4], "dead_letters:md.trades@id1/0/3-4"), ([9], "dead_letters:md.trades@id1/2/9-9")]


def test_the_inflight_range_is_read_back_from_commit_metadata() -> None:
    assert _inflight_range(f"{_INFLIGHT}1500-1899") == (1500, 1899)
    assert _inflight_range(None) is None
    assert _inflight_range("") is None
    assert _inflight_range("someone else's metadata") is None
    assert _inflight_range(f"{_INFLIGHT}garbage") is None
