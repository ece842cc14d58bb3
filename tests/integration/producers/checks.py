"""Assertions shared by the feed integration tests: what Kafka holds vs what the exchange did."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sim_exchange.process import SimExchangeProcess


def trades_by_symbol(records: list[tuple[bytes, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Group consumed Trade records by symbol, checking each key is ``binance:SYMBOL``."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for key, rec in records:
        assert key == f"binance:{rec['symbol']}".encode()
        out[rec["symbol"]].append(rec)
    return out


def assert_trades_match_exchange(
    trades: list[dict[str, Any]], sim: SimExchangeProcess, symbol: str, last_id_before_stop: int
) -> None:
    """Zero missing, zero duplicate trades from the first published one up to the last the exchange made before stop."""
    ids = [t["trade_id"] for t in trades]
    assert ids, f"no trades for {symbol}"
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicate trades"
    assert ids == list(range(ids[0], ids[-1] + 1)), f"missing trades: {sorted(set(range(ids[0], ids[-1] + 1)) - set(ids))[:20]}"
    assert ids[-1] >= last_id_before_stop
    truth = {t["id"]: t for t in sim.trades(symbol)}
    for t in trades:
        venue = truth[t["trade_id"]]
        assert (t["price"], t["qty"]) == (venue["price"], venue["qty"])
        assert t["side"] == ("sell" if venue["isBuyerMaker"] else "buy")


def assert_deltas_chain(deltas: list[dict[str, Any]]) -> None:
    """Per symbol: snapshot first, then update-id ranges that never repeat or go back."""
    by_symbol: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in deltas:
        by_symbol[d["symbol"]].append(d)
    for symbol, ds in by_symbol.items():
        assert ds[0]["snapshot"], f"{symbol}: first BookDelta is not a snapshot"
        last = ds[0]["last_update_id"]
        for d in ds[1:]:
            if d["snapshot"]:
                last = d["last_update_id"]
                continue
            assert d["last_update_id"] > last and d["first_update_id"] <= last + 1, (symbol, last, d["first_update_id"])
            last = d["last_update_id"]
