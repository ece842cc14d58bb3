"""Every venue's feed publishes its instruments' reference data on md.instruments: the venue's own
symbol mapped to base, quote, tick and lot, equal to the simulator's definition of the instrument."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import pytest
import requests

from schemas.topics import Topic
from sim_exchange.process import SimExchangeProcess
from tests.integration.producers.conftest import Broker, RunningFeed, consume_all

VENUE_SYMBOLS = {
    "binance": {"BTCUSDT": "BTCUSDT", "ETHBTC": "ETHBTC"},
    "kraken": {"BTC/USDT": "BTCUSDT", "ETH/BTC": "ETHBTC"},
    "coinbase": {"BTC-USDT": "BTCUSDT", "ETH-BTC": "ETHBTC"},
}


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_each_venue_maps_its_own_symbols_to_the_same_base_quote_tick_and_lot(
    own_broker: Broker,
    sim_exchange_factory: Callable[..., SimExchangeProcess],
    start_feed: Callable[..., RunningFeed],
) -> None:
    # Arrange: the simulator's own definitions (Binance's exchangeInfo form) are the truth
    sim = sim_exchange_factory(seed=41, symbols="BTCUSDT,ETHBTC", events_per_s=100)
    info = requests.get(f"{sim.rest_url}/api/v3/exchangeInfo", timeout=10).json()["symbols"]
    truth = {
        s["symbol"]: (s["baseAsset"], s["quoteAsset"],
                      Decimal(next(f["tickSize"] for f in s["filters"] if f["filterType"] == "PRICE_FILTER")),
                      Decimal(next(f["stepSize"] for f in s["filters"] if f["filterType"] == "LOT_SIZE")))
        for s in info
    }
    # Act
    feeds = [start_feed(own_broker.kafka, sim.ws_url, sim.rest_url, list(symbols), venue=venue, connections=1)
             for venue, symbols in VENUE_SYMBOLS.items()]
    time.sleep(5)
    for feed in feeds:
        assert feed.stop() == 0
    # Assert: one definition per venue symbol, keyed venue:symbol, equal to the simulator's
    records = consume_all(own_broker.kafka, Topic.INSTRUMENTS, 6)
    got = {(r["venue"], r["symbol"]): r for _, r in records}
    assert len(records) == len(got) == 6, sorted(got)
    for key, record in records:
        assert key == f"{record['venue']}:{record['symbol']}".encode()
    for venue, symbols in VENUE_SYMBOLS.items():
        for symbol, engine_symbol in symbols.items():
            r = got[(venue, symbol)]
            assert (r["base"], r["quote"], Decimal(r["tick_size"]), Decimal(r["lot_size"])) == truth[engine_symbol]
