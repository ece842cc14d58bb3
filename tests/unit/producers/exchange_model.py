"""A tiny reference exchange for property tests: the true book after every depth event."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from producers.venue import Diff, Snapshot


@dataclass
class Truth:
    """Depth events with contiguous update ids and the true book after each."""

    diffs: list[Diff]
    books: dict[int, tuple[dict[str, str], dict[str, str]]]  # last update id -> (bids, asks)
    first_id: int

    def snapshot_after(self, index: int) -> Snapshot:
        """Return the REST snapshot taken right after event ``index`` (-1: before the first event)."""
        sid = self.diffs[index].last_id if index >= 0 else self.first_id - 1
        bids, asks = self.books[sid]
        return Snapshot("X", sid, [[p, q] for p, q in bids.items()], [[p, q] for p, q in asks.items()], 0)


_level = st.tuples(st.integers(1, 20), st.sampled_from(["0", "1", "2.5", "0.000"]))


@st.composite
def truths(draw: st.DrawFn, max_events: int = 30) -> Truth:
    """Draw a sequence of depth events (bids 1..20, asks 21..40 so the true book never crosses)."""
    n = draw(st.integers(1, max_events))
    uid = draw(st.integers(1, 1000))
    first = uid
    bids: dict[str, str] = {f"{p}.0": "1" for p in range(5, 10)}
    asks: dict[str, str] = {f"{p}.0": "1" for p in range(25, 30)}
    books = {uid - 1: (dict(bids), dict(asks))}
    diffs = []
    for _ in range(n):
        span = draw(st.integers(1, 4))
        b = [[f"{p}.0", q] for p, q in draw(st.lists(_level, max_size=4))]
        a = [[f"{p + 20}.0", q] for p, q in draw(st.lists(_level, max_size=4))]
        for side, levels in ((bids, b), (asks, a)):
            for p, q in levels:
                if q.strip("0.") == "":
                    side.pop(p, None)
                else:
                    side[p] = q
        diffs.append(Diff("X", uid, uid + span - 1, b, a, 0, 0))
        uid += span
        books[uid - 1] = (dict(bids), dict(asks))
    return Truth(diffs, books, first)


def book_as_dicts(top: tuple[list[list[str]], list[list[str]]]) -> tuple[dict[str, str], dict[str, str]]:
    """Return a book's levels as price -> qty dicts (for comparison with the truth)."""
    return {p: q for p, q in top[0]}, {p: q for p, q in top[1]}
