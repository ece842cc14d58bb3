"""Simulated exchange throughput: matching-engine orders/s and websocket frames/s to 10 subscribers.

Part 1 (pure CPU, in process): orders/s through ``Engine.submit`` for a mix of resting, crossing
and market orders plus cancels, and book events/s of the seeded background flow
(``BackgroundFlow.step``), compared with the naive alternative of a flat list of resting orders
sorted on every match (the reference model of the property tests).
Part 2 (real process, real sockets): ``tickpipe sim-exchange`` at ``--rate`` book events/s, ``--subscribers``
aiohttp clients on ``/stream`` with trade, bookTicker and depth@100ms of every symbol; prints the
flow rate the server actually sustained and the frames/s delivered in total.
Run with ``.venv/bin/python -m bench.sim_exchange``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import time

import aiohttp

from sim_exchange.engine import Engine, OrderRequest, OrderType, Side, TimeInForce
from sim_exchange.flow import BackgroundFlow
from sim_exchange.process import start_sim_exchange
from sim_exchange.symbols import make_spec

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def _orders(count: int, seed: int) -> list[tuple[str, Side, int, int]]:
    rng = random.Random(seed)
    base = make_spec("BTCUSDT").start_price_ticks
    out = []
    for _ in range(count):
        kind = rng.choices(("limit", "market", "cancel"), (0.6, 0.1, 0.3))[0]
        out.append((kind, Side.BUY if rng.random() < 0.5 else Side.SELL, base + rng.randint(-30, 30), rng.randint(1, 400)))
    return out


def _deep_book(depth: int) -> list[tuple[Side, int, int]]:
    """``depth`` resting orders 31..230 ticks either side of the start price (a deep venue book)."""
    rng = random.Random(3)
    base = make_spec("BTCUSDT").start_price_ticks
    out = []
    for _ in range(depth):
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        offset = rng.randint(31, 230)
        out.append((side, base - offset if side is Side.BUY else base + offset, rng.randint(1, 400)))
    return out


def bench_engine(count: int, depth: int) -> float:
    spec = make_spec("BTCUSDT")
    engine = Engine([spec], clock=lambda: 0)
    for side, price, qty in _deep_book(depth):
        engine.submit(OrderRequest("BTCUSDT", side, OrderType.LIMIT, TimeInForce.GTC, price=price, qty=qty))
    engine.take_events()
    stream = _orders(count, 1)
    resting: list[int] = []
    rng = random.Random(2)
    started = time.perf_counter()
    for kind, side, price, qty in stream:
        if kind == "cancel" and resting:
            engine.cancel_resting("BTCUSDT", resting.pop(rng.randrange(len(resting))))
        elif kind == "market":
            engine.submit(OrderRequest("BTCUSDT", side, OrderType.MARKET, qty=qty))
        else:
            order, _ = engine.submit(OrderRequest("BTCUSDT", side, OrderType.LIMIT, TimeInForce.GTC, price=price, qty=qty))
            if order.is_open:
                resting.append(order.order_id)
        engine.take_events()
    return count / (time.perf_counter() - started)


def bench_naive(count: int, depth: int) -> float:
    """The flat-list alternative: filter + sort the resting orders on every incoming order."""
    stream = _orders(count, 1)
    book: list[list] = [[i, side, price, qty, i] for i, (side, price, qty) in enumerate(_deep_book(depth))]
    seq = len(book)
    resting: list[int] = []
    rng = random.Random(2)
    started = time.perf_counter()
    for kind, side, price, qty in stream:
        if kind == "cancel":
            if resting:
                gone = resting.pop(rng.randrange(len(resting)))
                book = [o for o in book if o[0] != gone]
            continue
        limit = None if kind == "market" else price
        crossing = sorted(
            (o for o in book if o[1] is not side and (limit is None or (o[2] <= limit if side is Side.BUY else o[2] >= limit))),
            key=lambda o: (o[2] if side is Side.BUY else -o[2], o[4]),
        )
        for o in crossing:
            if qty == 0:
                break
            take = min(qty, o[3])
            o[3] -= take
            qty -= take
        book = [o for o in book if o[3] > 0]
        if qty and limit is not None:
            seq += 1
            book.append([seq, side, price, qty, seq])
            resting.append(seq)
    return count / (time.perf_counter() - started)


def bench_flow(steps: int) -> float:
    specs = [make_spec(s) for s in SYMBOLS]
    engine = Engine(specs, clock=lambda: 0)
    flow = BackgroundFlow(engine, specs, 7)
    flow.seed_books(300)
    started = time.perf_counter()
    for _ in range(steps):
        flow.step()
        engine.take_events()
    return steps / (time.perf_counter() - started)


async def _subscriber(url: str, counts: list[int], index: int, stop: asyncio.Event) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(url, compress=0, max_msg_size=0) as ws:
        while not stop.is_set():
            try:
                msg = await asyncio.wait_for(ws.receive(), timeout=0.5)
            except TimeoutError:
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            counts[index] += 1


async def _fanout(ws_url: str, subscribers: int, seconds: float) -> tuple[int, float]:
    streams = "/".join(f"{s.lower()}@{k}" for s in SYMBOLS for k in ("trade", "bookTicker", "depth@100ms"))
    counts = [0] * subscribers
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_subscriber(f"{ws_url}/stream?streams={streams}", counts, i, stop)) for i in range(subscribers)]
    await asyncio.sleep(1.0)
    start_counts, started = sum(counts), time.perf_counter()
    await asyncio.sleep(seconds)
    total, elapsed = sum(counts) - start_counts, time.perf_counter() - started
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return total, elapsed


def bench_fanout(rate: float, subscribers: int, seconds: float) -> tuple[float, float]:
    sim = start_sim_exchange(events_per_s=rate, symbols=",".join(SYMBOLS), seed=7)
    try:
        steps_before = sim.health()["flow_steps"]
        t0 = time.perf_counter()
        total, elapsed = asyncio.run(_fanout(sim.ws_url, subscribers, seconds))
        steps_rate = (sim.health()["flow_steps"] - steps_before) / (time.perf_counter() - t0)
        return total / elapsed, steps_rate
    finally:
        sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--depth", type=int, default=2000, help="resting orders placed before timing")
    parser.add_argument("--rate", type=float, default=5000.0, help="background book events/s of the server")
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}")
    engine_rate = bench_engine(args.orders, args.depth)
    naive_rate = bench_naive(min(args.orders, 10_000), args.depth)
    print(f"book of {args.depth:,} resting orders; stream 60% limit, 10% market, 30% cancel")
    print(f"engine   orders/s (price levels + FIFO dicts):      {engine_rate:>10,.0f}")
    print(f"naive    orders/s (flat list sorted per order):     {naive_rate:>10,.0f}   engine/naive {engine_rate / naive_rate:.1f}x")
    print(f"flow     book events/s (BackgroundFlow.step, 2 symbols): {bench_flow(args.orders):>8,.0f}")
    frames, steps = bench_fanout(args.rate, args.subscribers, args.seconds)
    print(
        f"server   flow at target {args.rate:,.0f} events/s sustained {steps:,.0f} events/s; "
        f"{args.subscribers} subscribers x 6 streams received {frames:,.0f} frames/s in total "
        f"({frames / args.subscribers:,.0f} per subscriber)"
    )


if __name__ == "__main__":
    main()
