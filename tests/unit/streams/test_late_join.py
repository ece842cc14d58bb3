"""A late joiner's book: seeded from md.book.snapshots, then md.book read from anywhere at or before the seed.

The expected books come from a dict model of the feed's book, built from the same history without
the order book or the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from infra.book_snapshots import SnapshotRecord, resume_time_ms
from streams.models.base import InputRef
from streams.models.ofi_microprice import OfiMicropriceModel
from streams.pipelines.book import BookConfig, BookInstrument

MS = 1_000_000
CFG = BookConfig(OfiMicropriceModel(), features_interval_ns=0, target_qty="0.001", signal_ttl_ns=1000 * MS)
BID_PRICES = [f"{95 + i / 4:.2f}" for i in range(20)]  # 95.00 .. 99.75
ASK_PRICES = [f"{100.25 + i / 4:.2f}" for i in range(20)]  # 100.25 .. 105.00
ANCHORS = ({"90.00": "1"}, {"110.00": "1"})  # never changed: the book always has two sides


@dataclass
class History:
    """md.book records as the feed publishes them, and the feed's book after each one (the model)."""

    records: list[dict[str, Any]]
    books: list[tuple[dict[str, str], dict[str, str]]]


def _record(snapshot: bool, first: int, last: int, bids: dict[str, str], asks: dict[str, str], t: int) -> dict[str, Any]:
    return {"venue": "binance", "symbol": "BTCUSDT", "snapshot": snapshot, "first_update_id": first,
            "last_update_id": last, "bids": [{"price": p, "qty": q} for p, q in bids.items()],
            "asks": [{"price": p, "qty": q} for p, q in asks.items()], "ts_event": t, "ts_recv": t + 1}


def _apply(side: dict[str, str], changes: dict[str, str]) -> None:
    for price, qty in changes.items():
        if qty == "0":
            side.pop(price, None)
        else:
            side[price] = qty


changes = st.tuples(
    st.dictionaries(st.sampled_from(BID_PRICES), st.sampled_from(["0", "1", "2.5", "7"]), max_size=4),
    st.dictionaries(st.sampled_from(ASK_PRICES), st.sampled_from(["0", "1", "2.5", "7"]), max_size=4),
)


@st.composite
def histories(draw: st.DrawFn) -> History:
    """A snapshot, then deltas (1-4 update ids each) and now and then a resync: ids jump, a whole book follows."""
    bids, asks = dict(ANCHORS[0]), dict(ANCHORS[1])
    b, a = draw(changes)
    _apply(bids, b)
    _apply(asks, a)
    last = draw(st.integers(1, 10_000))
    records = [_record(True, last, last, bids, asks, 1000)]
    books = [(dict(bids), dict(asks))]
    straddle = True
    for i in range(draw(st.integers(1, 25))):
        b, a = draw(changes)
        _apply(bids, b)
        _apply(asks, a)
        t = 2000 + i * 1000
        if draw(st.integers(0, 9)) == 0:
            # a resync: the missing updates are in the new snapshot only (ids jump past what the next delta's
            # straddle reaches back to, as a venue's diff holds every change of its whole id range)
            last += draw(st.integers(4, 8))
            records.append(_record(True, last, last, bids, asks, t))
            straddle = True
        else:
            # the first delta after a snapshot may start before the snapshot's id + 1 (Binance's U <= id + 1 <= u)
            first = last + 1 - (draw(st.integers(0, 2)) if straddle else 0)
            last += draw(st.integers(1, 4))
            records.append(_record(False, first, last, b, a, t))
            straddle = False
        books.append((dict(bids), dict(asks)))
    return History(records, books)


def _model_features(bids: dict[str, str], asks: dict[str, str]) -> tuple[float, float]:
    best_bids = sorted(bids, key=Decimal, reverse=True)[:10]
    best_asks = sorted(asks, key=Decimal)[:10]
    mid = (float(best_bids[0]) + float(best_asks[0])) / 2
    b, a = sum(float(bids[p]) for p in best_bids), sum(float(asks[p]) for p in best_asks)
    return mid, (b - a) / (b + a)


def _as_dicts(inst: BookInstrument) -> tuple[dict[str, str], dict[str, str]]:
    state = inst.book.to_state()
    return dict(map(tuple, state["bids"])), dict(map(tuple, state["asks"]))


@settings(max_examples=300, deadline=None)
@given(histories(), st.data())
def test_seeded_book_continued_from_any_earlier_md_book_position_is_the_feeds_book_at_every_update(
    history: History, data: st.DataObject
) -> None:
    # Arrange: the feed's snapshot of its book at record k; the worker reads md.book from record j <= k + 1
    records, books = history.records, history.books
    k = data.draw(st.integers(0, len(records) - 1), label="seed at record")
    j = data.draw(st.integers(0, k + 1), label="md.book read from record")
    seed = _record(True, records[k]["last_update_id"], records[k]["last_update_id"], *books[k], 99)
    inst = BookInstrument()
    # Act
    seeded = inst.seed(seed, CFG)
    outs = [(i, inst.on_delta(records[i], InputRef("md.book", 0, i), CFG)) for i in range(j, len(records))]
    # Assert: nothing dead-lettered; the deltas the seed holds are noted as covered
    assert seeded
    assert [i for i, out in outs if out.error] == []
    covered = {i for i, out in outs if out.note == "covered by seed snapshot"}
    assert covered == {i for i in range(j, k + 1) if not records[i]["snapshot"]
                       and not any(records[s]["snapshot"] for s in range(j, i))}
    # every features record is the feed's book at its update id, and every record after the seed gives one
    featured = {i for i, out in outs if out.features is not None}
    assert featured >= set(range(k + 1, len(records)))
    for i, out in outs:
        if out.features is not None:
            assert out.features["update_id"] == records[i]["last_update_id"]
            mid, imbalance_10 = _model_features(*books[i])
            assert (out.features["mid"], out.features["imbalance_10"]) == (pytest.approx(mid), pytest.approx(imbalance_10))
    assert _as_dicts(inst) == books[-1]
    assert not inst.stale


@settings(max_examples=100, deadline=None)
@given(histories(), st.data())
def test_md_book_read_from_past_the_seed_leaves_the_book_stale_never_wrong(history: History, data: st.DataObject) -> None:
    # Arrange: the seek landed after the first delta the seed needs (a lookback shorter than the snapshot's age)
    records, books = history.records, history.books
    assume(len(records) >= 3)
    k = data.draw(st.integers(0, len(records) - 3), label="seed at record")
    j = data.draw(st.integers(k + 2, len(records) - 1), label="md.book read from record")
    seed = _record(True, records[k]["last_update_id"], records[k]["last_update_id"], *books[k], 99)
    inst = BookInstrument()
    inst.seed(seed, CFG)
    # Act
    outs = [(i, inst.on_delta(records[i], InputRef("md.book", 0, i), CFG)) for i in range(j, len(records))]
    # Assert: a features record only of a true book, never an error; none at all until a snapshot on md.book
    assert [i for i, out in outs if out.error] == []
    if not any(records[i]["snapshot"] for i in range(j, len(records))):
        assert all(out.features is None for _, out in outs) and inst.stale
    for i, out in outs:
        if out.features is not None:
            mid, imbalance_10 = _model_features(*books[i])
            assert (out.features["mid"], out.features["imbalance_10"]) == (pytest.approx(mid), pytest.approx(imbalance_10))


def _snapshot_delta(uid: int, bid: str) -> dict[str, Any]:
    return _record(True, uid, uid, {bid: "1"}, {"101.00": "1"}, 1000)


def test_a_seed_no_newer_than_a_synced_book_is_not_used_and_the_seeded_id_survives_the_changelog() -> None:
    # Arrange: a book restored from the changelog at update id 50
    inst = BookInstrument()
    inst.on_delta(_snapshot_delta(50, "99.00"), InputRef("md.book", 0, 0), CFG)
    # Act / Assert: an older or equal seed leaves the book; a newer one replaces it and is remembered
    assert not inst.seed(_snapshot_delta(40, "98.00"), CFG)
    assert not inst.seed(_snapshot_delta(50, "98.00"), CFG)
    assert inst.book.best_bid() == ("99.00", "1")
    assert inst.seed(_snapshot_delta(60, "98.50"), CFG)
    restored = BookInstrument.from_state(inst.to_state())
    assert restored.seeded_id == 60 and restored.book.best_bid() == ("98.50", "1")
    out = restored.on_delta(_record(False, 55, 60, {"98.50": "3"}, {}, 2000), InputRef("md.book", 0, 1), CFG)
    assert out.note == "covered by seed snapshot" and out.error is None


def test_a_state_saved_before_seeds_existed_restores_without_one() -> None:
    inst = BookInstrument()
    inst.on_delta(_snapshot_delta(5, "99.00"), InputRef("md.book", 0, 0), CFG)
    state = inst.to_state()
    del state["seeded_id"]
    assert BookInstrument.from_state(state).seeded_id is None


def test_md_book_resumes_lookback_before_the_newest_snapshot() -> None:
    snaps = [SnapshotRecord(b"k1", b"", 0, 0, 10_000), SnapshotRecord(b"k2", b"", 1, 3, 25_000)]
    assert resume_time_ms(snaps, 15_000) == 10_000
    assert resume_time_ms([], 15_000) is None
