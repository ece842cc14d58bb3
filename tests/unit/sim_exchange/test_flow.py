"""The background flow: deterministic per seed, and a realistic book."""

from __future__ import annotations

from sim_exchange.engine import Engine, TradeEvent
from sim_exchange.flow import BackgroundFlow
from sim_exchange.symbols import make_spec


def _run(seed: int, steps: int) -> tuple[Engine, list]:
    specs = [make_spec("BTCUSDT"), make_spec("ETHUSDT")]
    engine = Engine(specs, clock=lambda: 0)
    flow = BackgroundFlow(engine, specs, seed)
    flow.seed_books(200)
    events = []
    for _ in range(steps):
        flow.step()
        events.extend(engine.take_events())
    return engine, events


def test_same_seed_same_event_stream_and_different_seed_differs() -> None:
    _, first = _run(7, 3000)
    _, again = _run(7, 3000)
    _, other = _run(8, 3000)
    assert first == again
    assert first != other


def test_flow_gives_tight_spread_deeper_levels_away_from_touch_and_heavy_tailed_trades() -> None:
    specs = [make_spec("BTCUSDT"), make_spec("ETHUSDT")]
    engine = Engine(specs, clock=lambda: 0)
    flow = BackgroundFlow(engine, specs, 11)
    flow.seed_books(200)
    near = far = 0
    spreads = []
    trades: list[TradeEvent] = []
    for step in range(20_000):
        flow.step()
        trades.extend(e for e in engine.take_events() if isinstance(e, TradeEvent))
        if step % 500 == 499:
            _, bids, asks = engine.books["BTCUSDT"].snapshot(20)
            spreads.append(asks[0][0] - bids[0][0])
            near += sum(q for _, q in bids[:2]) + sum(q for _, q in asks[:2])
            far += sum(q for _, q in bids[10:12]) + sum(q for _, q in asks[10:12])
    assert len(trades) > 1000
    assert 1 <= sum(spreads) / len(spreads) <= 5, "spread of a few ticks on average"
    assert max(spreads) <= 20
    assert far > 1.2 * near, "depth grows away from the touch"
    sizes = sorted(t.qty for t in trades if t.symbol == "BTCUSDT")
    median, p99 = sizes[len(sizes) // 2], sizes[int(len(sizes) * 0.99)]
    assert p99 > 5 * median, "trade sizes have a heavy tail"


def test_trimmed_trade_history_keeps_ids_addressable() -> None:
    engine, _ = _run(3, 3000)
    total = engine.books["BTCUSDT"].last_trade_id
    assert [t.trade_id for t in engine.trades_from("BTCUSDT", 1, 5)] == [1, 2, 3, 4, 5]
    engine.trim_trades(100)
    assert len(engine.trades["BTCUSDT"]) == 100
    assert engine.trades_from("BTCUSDT", total - 9, 50)[0].trade_id == total - 9
    assert len(engine.trades_from("BTCUSDT", total - 9, 50)) == 10
    assert engine.trades_from("BTCUSDT", 1, 1)[0].trade_id == total - 99  # older ids are gone
