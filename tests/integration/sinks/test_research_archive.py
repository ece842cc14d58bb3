"""sinks.research.Archive on a fresh archive: the book at a time, time windows, bars' latest versions."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from sinks.research import Archive as ResearchArchive
from tests.integration.sinks.conftest import Archive
from tests.integration.sinks.known_data import write_history

S = 1_000_000_000
T0 = 1_790_000_000 * S
BASE = {"venue": "binance", "symbol": "BTCUSDT"}


def _book(first: int, last: int, at: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]],
          snapshot: bool = False) -> dict[str, Any]:
    return {**BASE, "snapshot": snapshot, "first_update_id": first, "last_update_id": last,
            "bids": [{"price": p, "qty": q} for p, q in bids], "asks": [{"price": p, "qty": q} for p, q in asks],
            "ts_event": at, "ts_recv": at}


def _levels(frame: pd.DataFrame) -> list[tuple[str, int, Decimal, Decimal]]:
    return [(r.side, r.level, r.price, r.qty) for r in frame.itertuples()]


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_book_at_replays_the_last_snapshot_and_its_deltas_up_to_the_time_and_stops_at_a_gap(
        fresh_archive: Callable[[], Archive]) -> None:
    # Arrange: snapshot at T0; at T0+1s the 100 bid goes, 99.5 comes, the 101 ask shrinks; at T0+3s a gap
    book = [
        _book(10, 10, T0, [("100", "1"), ("99", "2")], [("101", "1"), ("102", "3")], snapshot=True),
        _book(11, 12, T0 + S, [("100", "0"), ("99.5", "4")], [("101", "0.5")]),
        _book(13, 13, T0 + 2 * S, [], [("103", "7")]),
        _book(20, 21, T0 + 3 * S, [("99.9", "1")], []),  # 14..19 missing
    ]
    archive = fresh_archive()
    write_history(archive.client, {"md.book": book})
    research = ResearchArchive(archive.client)

    # Act
    before, at_delta, after_gap = (research.book_at("binance", "BTCUSDT", at, depth=2)
                                   for at in (T0 - 1, T0 + S, T0 + 9 * S))

    # Assert
    assert before.empty and list(before.columns) == ["side", "level", "price", "qty"]
    assert _levels(at_delta) == [("bid", 0, Decimal("99.5"), Decimal(4)), ("bid", 1, Decimal(99), Decimal(2)),
                                 ("ask", 0, Decimal(101), Decimal("0.5")), ("ask", 1, Decimal(102), Decimal(3))]
    assert _levels(after_gap)[2:] == [("ask", 0, Decimal(101), Decimal("0.5")), ("ask", 1, Decimal(102), Decimal(3))]
    assert ("bid", 0, Decimal("99.9"), Decimal(1)) not in _levels(after_gap)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_windows_are_half_open_in_utc_and_bars_come_once_at_their_latest_version(
        fresh_archive: Callable[[], Archive]) -> None:
    # Arrange: trades one second apart; the 1 m bar of T0 emitted twice (a late trade: version 1)
    trades = [{**BASE, "trade_id": k, "price": f"100.{k}", "qty": "0.5", "side": "buy", "ts_event": T0 + k * S,
               "ts_recv": T0 + k * S} for k in range(5)]
    bar = {**BASE, "interval": "1m", "start": T0, "end": T0 + 60 * S, "open": "100", "high": "101", "low": "99",
           "close": "100.5", "volume": "2", "quote_volume": "200", "vwap": "100", "trade_count": 4,
           "first_trade_id": 0, "last_trade_id": 3, "version": 0, "ts_event": T0, "ts_recv": T0, "ts_emit": T0}
    bars = [bar, {**bar, "close": "100.4", "volume": "2.5", "trade_count": 5, "last_trade_id": 4, "version": 1}]
    archive = fresh_archive()
    write_history(archive.client, {"md.trades": trades, "bars.1m": bars})
    research = ResearchArchive(archive.client)

    # Act
    window = research.trades("binance", "BTCUSDT", start=pd.Timestamp(T0 + S, tz="UTC"), end=T0 + 3 * S)
    latest = research.bars("1m", symbol="BTCUSDT")

    # Assert
    assert list(window["trade_id"]) == [1, 2] and list(window["price"]) == [Decimal("100.1"), Decimal("100.2")]
    assert str(window["ts_event"].dt.tz) == "UTC" and window["ts_event"].iloc[0].value == T0 + S
    assert research.trades(symbol="ETHUSDT").empty
    assert list(latest["version"]) == [1] and latest["volume"].iloc[0] == Decimal("2.5")
