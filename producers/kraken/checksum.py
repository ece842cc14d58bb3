"""Kraken's book checksum (WebSocket v2 "Book checksum"): CRC32 of the top 10 asks, then the top 10 bids.

Each level contributes its price then its quantity, both written with the pair's precision, with
the ``.`` removed and leading zeros stripped (``"0.00100000"`` -> ``"100000"``); asks low to high,
bids high to low. The result is compared, as an unsigned 32-bit integer, with the ``checksum`` of
every book message, after the message is applied and the book truncated to the subscribed depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from zlib import crc32

from orderbook import OrderBook

CHECKSUM_LEVELS = 10


def _text(value: str) -> str:
    return value.replace(".", "").lstrip("0")


def checksum_text(asks: Sequence[Sequence[str]], bids: Sequence[Sequence[str]]) -> str:
    """Return the string Kraken hashes, from levels best first written with the pair's precision."""
    parts = [_text(p) + _text(q) for p, q in asks[:CHECKSUM_LEVELS]]
    parts += [_text(p) + _text(q) for p, q in bids[:CHECKSUM_LEVELS]]
    return "".join(parts)


def checksum(asks: Sequence[Sequence[str]], bids: Sequence[Sequence[str]]) -> int:
    """Return the CRC32 Kraken sends for a book whose best levels are ``asks`` and ``bids``."""
    return crc32(checksum_text(asks, bids).encode()) & 0xFFFFFFFF


def book_checksum(book: OrderBook) -> int:
    """Return the checksum of ``book`` (its levels hold precision-formatted venue strings)."""
    bids, asks = book.top(CHECKSUM_LEVELS)
    return checksum(asks, bids)
