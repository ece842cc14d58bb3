"""Checks of the venues whose book comes over the websocket (Kraken, Coinbase) against the simulator's own state."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from orderbook import SequencedBook
from orderbook.sequence import Applied
from sim_exchange.process import SimExchangeProcess


def rebuilt_book(deltas: list[dict[str, Any]], symbol: str) -> SequencedBook:
    """Apply the symbol's BookDelta records as a consumer does; every one must be admitted by the update-id rule."""
    book = SequencedBook()
    for d in deltas:
        if d["symbol"] == symbol:
            decision = book.apply_record(d)
            assert type(decision) is Applied, (symbol, decision, d["first_update_id"], d["last_update_id"])
    return book


def assert_book_equals_exchange(book: SequencedBook, sim: SimExchangeProcess, engine_symbol: str, depth: int) -> None:
    """The top ``depth`` levels equal the simulator's own book, compared as exact decimals."""
    truth = sim.book(engine_symbol)
    bids, asks = book.top(depth)

    def exact(levels: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
        return [(Decimal(p), Decimal(q)) for p, q in levels[:depth]]

    for side, ours, theirs in (("bids", exact(bids), exact(truth["bids"])), ("asks", exact(asks), exact(truth["asks"]))):
        assert ours == theirs, (engine_symbol, side, sorted(set(ours) ^ set(theirs))[:10], len(ours), len(theirs))
    assert bids and asks


def assert_trades_equal_exchange(trades: list[dict[str, Any]], sim: SimExchangeProcess, engine_symbol: str,
                                 last_id_before_stop: int) -> None:
    """Zero missing, zero duplicate trades from the first published one to the last the exchange made before stop."""
    ids = [t["trade_id"] for t in trades]
    assert ids, f"no trades for {engine_symbol}"
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicate trades"
    assert ids == list(range(ids[0], ids[-1] + 1)), f"missing: {sorted(set(range(ids[0], ids[-1] + 1)) - set(ids))[:20]}"
    assert ids[-1] >= last_id_before_stop
    truth = {t["id"]: t for t in sim.trades(engine_symbol)}
    for t in trades:
        venue = truth[t["trade_id"]]
        assert (Decimal(t["price"]), Decimal(t["qty"])) == (Decimal(venue["price"]), Decimal(venue["qty"]))
        assert t["side"] == ("sell" if venue["isBuyerMaker"] else "buy")
