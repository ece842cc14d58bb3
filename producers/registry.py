"""Venue id -> adapter factory; the one place that lists the supported venues (cf. cryptofeed's EXCHANGE_MAP)."""

from __future__ import annotations

from collections.abc import Callable

from producers.binance.enums import VENUE as BINANCE
from producers.binance.feed import BinanceSpotAdapter
from producers.coinbase.enums import VENUE as COINBASE
from producers.coinbase.feed import CoinbaseAdvancedAdapter
from producers.kraken.enums import VENUE as KRAKEN
from producers.kraken.feed import KrakenSpotAdapter
from producers.venue import VenueAdapter

ADAPTERS: dict[str, Callable[[], VenueAdapter]] = {
    BINANCE: BinanceSpotAdapter, KRAKEN: KrakenSpotAdapter, COINBASE: CoinbaseAdvancedAdapter,
}


def adapter_for(venue: str) -> VenueAdapter:
    """Return a new adapter for ``venue`` or raise ``ValueError`` naming the supported ones."""
    try:
        return ADAPTERS[venue]()
    except KeyError:
        raise ValueError(f"unknown venue {venue!r}; supported: {', '.join(sorted(ADAPTERS))}") from None
