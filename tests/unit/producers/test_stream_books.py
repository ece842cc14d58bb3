"""StreamBooks: per-connection websocket books, one published; property-tested against a dict model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orderbook import OrderBook, SequencedBook
from producers.kraken.checksum import checksum
from producers.stream_books import Broken, Publish, StreamBooks
from producers.venue import BookMessage

DEPTH = 5


def _intact(book: OrderBook, message: BookMessage) -> bool:
    bids, asks = book.top(10)
    return checksum(asks, bids) == message.checksum


class Venue:
    """The venue's own book (a dict model) and the messages it sends: top-DEPTH view, Kraken-style."""

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}

    def view(self) -> tuple[list[list[str]], list[list[str]]]:
        bids = [[f"{p}.0", f"{q}.00"] for p, q in sorted(self.bids.items(), reverse=True)[:DEPTH]]
        asks = [[f"{p}.0", f"{q}.00"] for p, q in sorted(self.asks.items())[:DEPTH]]
        return bids, asks

    def snapshot(self, t: int) -> BookMessage:
        bids, asks = self.view()
        return BookMessage("X/Y", True, bids, asks, t, t, checksum(asks, bids))

    def change(self, is_bid: bool, price: int, qty: int, t: int) -> BookMessage:
        before_b, before_a = self.view()
        side = self.bids if is_bid else self.asks
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)
        bids, asks = self.view()
        # what left the view because it was deleted is sent as 0; what was pushed out is not sent
        diff_b = [lv for lv in bids if lv not in before_b] + [[p, "0"] for p, _ in before_b
                                                             if int(p[:-2]) not in self.bids]
        diff_a = [lv for lv in asks if lv not in before_a] + [[p, "0"] for p, _ in before_a
                                                             if int(p[:-2]) not in self.asks]
        return BookMessage("X/Y", False, diff_b, diff_a, t, t, checksum(asks, bids))


_ops = st.lists(st.tuples(
    st.booleans(), st.integers(1, 30), st.integers(0, 4), st.sampled_from(["both", "both", "both", "corrupt0", "drop1"]),
), max_size=80)


@given(_ops)
def test_published_records_rebuild_the_venue_view_whatever_one_connection_loses(ops: list[tuple[bool, int, int, str]]) -> None:
    # Arrange: bids below 50, asks above, so the venue never crosses
    venue = Venue()
    books = StreamBooks(DEPTH, _intact)
    consumer = SequencedBook()
    t = 1_000_000
    alive = {"c0", "c1"}

    def deliver(conn: str, message: BookMessage) -> None:
        result = books.apply(conn, message)
        if isinstance(result, Broken):
            alive.discard(conn)
            result = result.took_over
        if isinstance(result, Publish):
            consumer.apply_record({
                "snapshot": result.snapshot, "first_update_id": result.first, "last_update_id": result.last,
                "bids": [{"price": p, "qty": q} for p, q in result.bids],
                "asks": [{"price": p, "qty": q} for p, q in result.asks],
            })

    for conn in ("c0", "c1"):
        deliver(conn, venue.snapshot(t))
    # Act
    for is_bid, price, qty, fate in ops:
        t += 1000
        message = venue.change(is_bid, price if is_bid else price + 50, qty, t)
        for conn in sorted(alive):
            if fate == "drop1" and conn == "c1":
                continue  # lost on c1: its checksum fails on the next message
            if fate == "corrupt0" and conn == "c0":
                deliver(conn, BookMessage("X/Y", False, message.bids, message.asks, t, t, (message.checksum or 0) ^ 1))
                continue
            deliver(conn, message)
        for conn in ("c0", "c1"):  # a broken connection resubscribes: a fresh snapshot
            if conn not in alive:
                alive.add(conn)
                deliver(conn, venue.snapshot(t))
    # a lost message shows on the connection's next one: the venue always sends another
    t += 1000
    last = venue.change(True, 49, venue.bids.get(49, 0), t)
    for conn in sorted(alive):
        deliver(conn, last)
    # Assert: the published records add up to the venue's view
    bids, asks = venue.view()
    assert consumer.top(DEPTH) == (bids, asks)
    assert books.published is not None and books.published.top() == (bids, asks)
