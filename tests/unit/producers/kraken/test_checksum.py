"""Kraken's book checksum: the documented worked example, and properties of the rule (hypothesis)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from zlib import crc32

import orjson
from hypothesis import given
from hypothesis import strategies as st

from orderbook import OrderBook
from producers.kraken.checksum import book_checksum, checksum, checksum_text
from producers.kraken.parse import KrakenParser, fmt

FIXTURES = Path(__file__).parents[3] / "fixtures" / "kraken"
RECV = 1_700_000_000_000_000_000

# the strings Kraken's guide shows for its example book
DOC_ASKS = ("45285210000045286415457195345286615457110945289615456091145290215890660452918154553491452947445474"
            "945296135380000452975994554245299518772827")
DOC_BIDS = ("45283510000000452834154582015452821100000004528101000000045280315459258645279079900004527763310103"
            "4527753000000045277315460273745276615445238")


def _doc_book() -> tuple[list[list[str]], list[list[str]], int]:
    parser = KrakenParser()
    parser.parse_frame((FIXTURES / "instrument.json").read_bytes(), RECV)
    _, message = parser.parse_frame((FIXTURES / "book_snapshot.json").read_bytes(), RECV)
    return message.bids, message.asks, message.checksum


def test_documented_example_book_hashes_to_kraken_checksum() -> None:
    # Arrange
    bids, asks, expected = _doc_book()
    # Act
    text = checksum_text(asks, bids)
    # Assert
    assert expected == 3310070434
    assert text == DOC_ASKS + DOC_BIDS
    assert checksum(asks, bids) == 3310070434


def test_documented_example_through_the_order_book() -> None:
    bids, asks, _ = _doc_book()
    book = OrderBook()
    book.reset(bids, asks, 0)
    assert book_checksum(book) == 3310070434
    book.apply([["45283.5", "0.00000000"]], [], 0)  # the best bid removed: another book, another checksum
    assert book_checksum(book) != 3310070434


_levels = st.lists(
    st.tuples(st.integers(1, 10**9), st.integers(1, 10**12)), min_size=0, max_size=25, unique_by=lambda t: t[0],
)


@given(_levels, _levels, st.integers(0, 8), st.integers(0, 10))
def test_checksum_is_crc32_of_top_ten_digits_without_leading_zeros(
    ask_units: list[tuple[int, int]], bid_units: list[tuple[int, int]], pp: int, qp: int,
) -> None:
    # Arrange: levels as Kraken writes them with the pair's precisions, best first
    def text(units: int, places: int) -> str:
        return fmt(format(Decimal(units).scaleb(-places), "f"), places, "x")

    asks = [[text(p, pp), text(q, qp)] for p, q in sorted(ask_units)]
    bids = [[text(p, pp), text(q, qp)] for p, q in sorted(bid_units, reverse=True)]
    # Act
    got = checksum(asks, bids)
    # Assert: an independent reading of the rule - the integer units, printed without leading zeros
    expected = "".join(f"{p}{q}" for p, q in sorted(ask_units)[:10])
    expected += "".join(f"{p}{q}" for p, q in sorted(bid_units, reverse=True)[:10])
    assert got == crc32(expected.encode()) & 0xFFFFFFFF
    assert 0 <= got <= 0xFFFFFFFF


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 40), st.integers(0, 5)), max_size=60))
def test_book_checksum_only_depends_on_the_top_ten(ops: list[tuple[bool, int, int]]) -> None:
    # Arrange: a book, and a copy that also holds a level far from the touch on each side
    book, deep = OrderBook(), OrderBook()
    for is_bid, price, qty in ops:
        level = [[f"{price if is_bid else price + 100}.0", f"{qty}.000"]]
        for b in (book, deep):
            b.apply(level if is_bid else [], [] if is_bid else level, 0)
    deep.apply([["0.5", "1.000"]], [["999.0", "1.000"]], 0)
    # Act / Assert: far levels change nothing once ten better ones exist on their side
    bids, asks = book.top()
    assert book_checksum(book) == checksum(asks, bids)
    if len(bids) >= 10 and len(asks) >= 10:
        assert book_checksum(book) == book_checksum(deep)
    else:
        assert book_checksum(book) != book_checksum(deep)


def test_fixture_is_the_documented_frame() -> None:
    frame = orjson.loads((FIXTURES / "book_snapshot.json").read_bytes())
    assert frame["data"][0]["checksum"] == 3310070434
