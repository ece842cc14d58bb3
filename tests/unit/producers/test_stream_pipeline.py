"""FeedPipeline with a websocket-book venue (Kraken frames): what a broken connection book publishes."""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from producers.health import FeedEvents
from producers.kraken.checksum import checksum
from producers.metrics import FeedMetrics
from producers.pipeline import Callbacks, FeedPipeline
from producers.registry import adapter_for


def _book(kind: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]], crc: int) -> bytes:
    levels = lambda side: ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in side)
    stamp = ',"timestamp":"2023-10-06T17:35:55.440295Z"' if kind == "update" else ""
    return (f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"BTC/USD","bids":[{levels(bids)}],'
            f'"asks":[{levels(asks)}],"checksum":{crc}{stamp}}}]}}').encode()


def _pair_book(symbol: str, kind: str, bid: tuple[str, str], ask: tuple[str, str], crc: int | None = None) -> bytes:
    digits = lambda p, q: [[p.replace(".", "").lstrip("0"), q.replace(".", "").lstrip("0")]]
    crc = checksum(digits(*ask), digits(*bid)) if crc is None else crc
    return _book(kind, [bid], [ask], crc).replace(b'"BTC/USD"', f'"{symbol}"'.encode())


def _pipeline(symbols: tuple[str, ...] = ("BTC/USD",)) -> tuple[FeedPipeline, list[tuple[str, dict[str, Any]]], list[str]]:
    """Connections c0 and c1, each with an intact book of every symbol (bid 100.0 x 1.00, ask 101.0 x 2.00)."""
    out: list[tuple[str, dict[str, Any]]] = []
    replaced: list[str] = []
    pipeline = FeedPipeline(adapter_for("kraken"), list(symbols), lambda t, k, n, r: out.append((n, r)),
                            FeedEvents("kraken", "p"), FeedMetrics(CollectorRegistry()),
                            callbacks=Callbacks(replace_connection=replaced.append))
    instrument = orjson.dumps({"channel": "instrument", "type": "snapshot", "data": {"pairs": [
        {"symbol": s, "base": s.split("/")[0], "quote": "USD", "price_precision": 1, "qty_precision": 2,
         "price_increment": 0.1, "qty_increment": 0.01} for s in symbols]}})
    t = 1_000_000_000
    for conn in ("c0", "c1"):
        pipeline.open(conn, "ws://x/v2", t)
        pipeline.frame(conn, instrument, t)
        for symbol in symbols:
            pipeline.frame(conn, _pair_book(symbol, "snapshot", ("100.0", "1.00"), ("101.0", "2.00")), t)
    return pipeline, out, replaced


def test_a_broken_non_leader_book_is_a_connection_gap_and_the_published_book_goes_on() -> None:
    # Arrange
    pipeline, out, replaced = _pipeline()
    out.clear()
    good = _book("update", [("100.0", "3.00")], [], checksum([["1010", "200"]], [["1000", "300"]]))
    # Act: c1 (not the leader) gets a wrong checksum; c0 the right one
    pipeline.frame("c1", good.replace(b'"checksum":', b'"checksum":1', 1), 2_000_000_000)
    pipeline.frame("c0", good, 2_000_000_000)
    # Assert
    events = [r for n, r in out if n == "FeedEvent"]
    assert [(e["kind"], e["symbol"], e["connection_id"]) for e in events] == [("gap", "", "c1")]
    assert "BTC/USD book on connection c1 fails the venue's check" in events[0]["detail"]
    assert replaced == ["c1"]
    deltas = [r for n, r in out if n == "BookDelta"]
    assert len(deltas) == 1 and not deltas[0]["snapshot"] and deltas[0]["bids"] == [{"price": "100.0", "qty": "3.00"}]


def test_a_broken_leader_book_is_the_instruments_gap_then_the_other_connection_continues_as_a_snapshot() -> None:
    # Arrange
    pipeline, out, replaced = _pipeline()
    out.clear()
    good = _book("update", [("100.0", "3.00")], [], checksum([["1010", "200"]], [["1000", "300"]]))
    # Act: the peer applies the update first, then the leader's copy is corrupted
    pipeline.frame("c1", good, 2_000_000_000)
    pipeline.frame("c0", good.replace(b'"checksum":', b'"checksum":1', 1), 2_000_000_001)
    # Assert: gap on BTC/USD, a snapshot of c1's book, recovered; never stale
    kinds = [(n, r.get("kind"), r["symbol"]) for n, r in out]
    assert kinds == [("FeedEvent", "gap", "BTC/USD"), ("BookDelta", None, "BTC/USD"),
                     ("FeedEvent", "recovered", "BTC/USD")]
    snapshot = out[1][1]
    assert snapshot["snapshot"] and snapshot["bids"] == [{"price": "100.0", "qty": "3.00"}]
    assert replaced == ["c0"]
    assert pipeline.published_book("BTC/USD").top() == ([["100.0", "3.00"]], [["101.0", "2.00"]])


def test_a_stalled_leader_hands_the_book_over_at_once_not_when_its_socket_finally_closes() -> None:
    # Arrange
    pipeline, out, replaced = _pipeline()
    out.clear()
    # Act: only c1 receives for longer than the stall timeout (2 s by default), then a tick
    for i in range(1, 31):
        crc = checksum([["1010", "200"]], [["1000", f"{100 + i}"]])
        pipeline.frame("c1", _book("update", [("100.0", f"{1 + i / 100:.2f}")], [], crc), 1_000_000_000 + i * 100_000_000)
    pipeline.tick(4_100_000_000)
    # Assert: c0 reported stalled, replaced, and its book no longer published
    kinds = [(n, r.get("kind"), r.get("connection_id")) for n, r in out]
    assert ("FeedEvent", "stalled", "c0") in kinds and replaced == ["c0"]
    snapshot = next(r for n, r in out if n == "BookDelta" and r["snapshot"])
    assert snapshot["bids"] == [{"price": "100.0", "qty": "1.30"}]
    assert pipeline.published_book("BTC/USD").top() == ([["100.0", "1.30"]], [["101.0", "2.00"]])



def test_a_connection_replaced_for_one_pairs_check_keeps_no_other_pairs_book_to_hand_over_later() -> None:
    # Arrange: two connections, each with an intact BTC/USD and ETH/USD book; c0 publishes both
    pipeline, out, replaced = _pipeline(("BTC/USD", "ETH/USD"))
    t = 1_000_000_000
    # Act: c1's BTC/USD check fails, so c1 is replaced; until its socket closes it still delivers an
    # ETH/USD update; meanwhile the market moves and c0 applies it; then c0 closes
    pipeline.frame("c1", _pair_book("BTC/USD", "update", ("100.0", "3.00"), ("101.0", "2.00"), crc=1), 2 * t)
    pipeline.frame("c1", _pair_book("ETH/USD", "update", ("100.0", "5.00"), ("101.0", "2.00")), 2 * t + 1)
    pipeline.frame("c0", _pair_book("ETH/USD", "update", ("100.0", "7.00"), ("101.0", "2.00")), 2 * t + 2)
    out.clear()
    pipeline.close("c0", "closed", 3 * t)
    # Assert: c1 was replaced at the check failure; no book of c1 takes over when c0 closes: both
    # pairs are stale until a new connection's snapshot
    assert replaced == ["c1"]
    assert not [r for n, r in out if n == "BookDelta"]
    stale = sorted(r["symbol"] for n, r in out if n == "FeedEvent" and r["kind"] == "stale")
    assert stale == ["BTC/USD", "ETH/USD"]
    assert pipeline.published_book("ETH/USD") is None
