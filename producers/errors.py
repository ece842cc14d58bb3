"""Errors of the feed producers; each says whether retrying can help (its ``retriable`` flag)."""

from __future__ import annotations


class FeedError(Exception):
    """Base of every feed producer error."""

    retriable = False


class ParseError(FeedError):
    """A venue frame or REST body that is not what the venue documents; the raw text goes to ``dlq``."""

    retriable = False

    def __init__(self, reason: str, symbol: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.symbol = symbol
