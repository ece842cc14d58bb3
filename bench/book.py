"""Order-book apply: the shared ``orderbook`` against the three books it replaced, in one run.

The books before ``orderbook`` (the feed's ``producers/order_book.py``, the streams'
``streams/features/book.py``, the executor's ``executor/market.py``) are loaded from git at
``--baseline`` (default: the commit before the feed's book was removed) and fed the same records as
today's code, stage by stage:

* ``feed``: ``reset`` / ``apply`` of each record's levels plus ``is_crossed()``, as ``BookSync`` calls them;
* ``streams``: each BookDelta record applied (``max_levels`` 5,000) and the book's features computed;
* ``executor``: ``MarketView.on_book`` of each record; ``executor snapshot()``: the visible depth
  (10 levels) of the final book, ``--views`` calls.

Two streams of records: the BookDelta records the feed publishes for ``--file`` (a recording, by
default the simulator capture in tests/fixtures), and a seeded Binance-like one: a ``--depth``-level
snapshot a side (Binance's largest is 5,000), then ``--deltas`` updates of ``--levels`` levels each
around a wandering mid (8-decimal strings as Binance sends them, ~20 % removals, never crossed).
Old and new take turns ``--blocks`` times; a figure is records/s from the fastest of ``--repeat``
rounds over all blocks (the least disturbed on a shared machine), the ratio new/old also per block.

Run: ``.venv/bin/python -m bench.book [--baseline REV] [--repeat 5] [--blocks 3]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import random
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.feed import DEFAULT_FILE, _replay, _timed
from executor.market import MarketView
from orderbook import OrderBook
from producers.recording import read_recording
from streams.features.book import book_features, new_book

ROOT = Path(__file__).resolve().parents[1]
MAX_LEVELS = 5_000
Record = dict[str, Any]


def load_old(rev: str, path: str, into: Path) -> types.ModuleType:
    """Import the module at ``path`` as it was at ``rev`` (a copy written into ``into``, under a name of its own)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], capture_output=True, text=True,
                            check=True).stdout
    name = "bench_old_" + path.removesuffix(".py").replace("/", "_")
    file = into / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def default_baseline() -> str:
    """Return the commit before the one that removed the feed's own book."""
    removed = subprocess.run(["git", "-C", str(ROOT), "log", "--diff-filter=D", "--format=%H", "-1", "--",
                              "producers/order_book.py"], capture_output=True, text=True, check=True).stdout.strip()
    return f"{removed}^" if removed else "HEAD"


def recorded(path: Path) -> list[Record]:
    """Return the BookDelta records the feed publishes for the recording at ``path``."""
    records: list[Record] = []
    _replay(list(read_recording(path)), lambda topic, key, name, rec: records.append(rec) if name == "BookDelta" else None)
    return records


def binance_like(seed: int, depth: int, deltas: int, levels: int) -> list[Record]:
    """Return a snapshot of ``depth`` levels a side and ``deltas`` updates around a wandering mid."""
    rng = random.Random(seed)
    mid = 6_000_000  # ticks of 0.01: 60,000.00

    def qty() -> str:
        return f"{rng.randint(1, 500_000_000) / 1e8:.8f}"

    def text(tick: int) -> str:
        return f"{tick / 100:.8f}"

    bids = {mid - k: qty() for k in range(1, depth + 1)}
    asks = {mid + k: qty() for k in range(1, depth + 1)}
    out = [_record(True, 1, 1, [(text(t), q) for t, q in bids.items()], [(text(t), q) for t, q in asks.items()])]
    for uid in range(2, deltas + 2):
        mid += rng.randint(-2, 2)
        changes: tuple[dict[int, str], dict[int, str]] = ({}, {})
        for side, book, sign in ((0, bids, -1), (1, asks, 1)):
            for tick in [t for t in book if (t - mid) * sign <= 0]:  # through the new mid: removed
                del book[tick]
                changes[side][tick] = "0.00000000"
            for _ in range(levels // 2):
                tick = mid + sign * min(1 + int(rng.expovariate(1 / 40)), depth)
                q = "0.00000000" if rng.random() < 0.2 else qty()
                changes[side][tick] = q
                if q == "0.00000000":
                    book.pop(tick, None)
                else:
                    book[tick] = q
        out.append(_record(False, uid, uid, [(text(t), q) for t, q in changes[0].items()],
                           [(text(t), q) for t, q in changes[1].items()]))
    return out


def _record(snapshot: bool, first: int, last: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> Record:
    return {"venue": "binance", "symbol": "BTCUSDT", "snapshot": snapshot, "first_update_id": first,
            "last_update_id": last, "bids": [{"price": p, "qty": q} for p, q in bids],
            "asks": [{"price": p, "qty": q} for p, q in asks], "ts_event": last, "ts_recv": last}


def stages(old: dict[str, types.ModuleType], records: list[Record], views: int) -> dict[str, tuple[Callable[[], None], ...]]:
    """Return ``stage -> (old body, new body)``, each one round over ``records`` (per symbol)."""
    by_symbol: dict[str, list[Record]] = {}
    for rec in records:
        by_symbol.setdefault(rec["symbol"], []).append(rec)
    # the feed's levels as the venue parser hands them over: [[price, qty], ...]
    feed_input = [[(r["snapshot"], [[lv["price"], lv["qty"]] for lv in r["bids"]],
                    [[lv["price"], lv["qty"]] for lv in r["asks"]], r["last_update_id"]) for r in recs]
                  for recs in by_symbol.values()]

    def feed(book_class: type) -> Callable[[], None]:
        def body() -> None:
            for recs in feed_input:
                book = book_class()
                for snapshot, bids, asks, uid in recs:
                    (book.reset if snapshot else book.apply)(bids, asks, uid)
                    book.is_crossed()
        return body

    def streams_old() -> None:
        for recs in by_symbol.values():
            book = old["streams"].OrderBook()
            for rec in recs:
                book.apply(rec, MAX_LEVELS)
                book.features()

    def streams_new() -> None:
        for recs in by_symbol.values():
            book = new_book()
            for rec in recs:
                book.apply_record(rec, MAX_LEVELS)
                book_features(book)

    def market(view_class: type) -> Any:
        view = view_class(10)
        for symbol, recs in by_symbol.items():
            first = recs[0]["bids"][0]["price"], recs[0]["asks"][0]["price"]
            view.on_bbo({"venue": "binance", "symbol": symbol, "update_id": 0, "bid_price": first[0], "bid_qty": "1",
                         "ask_price": first[1], "ask_qty": "1", "ts_recv": 0})
        return view

    def executor(view_class: type) -> Callable[[], None]:
        def body() -> None:
            view = market(view_class)
            for rec in records:
                view.on_book(rec)
        return body

    def views_of(view_class: type) -> Callable[[], None]:
        view = market(view_class)
        for rec in records:
            view.on_book(rec)

        def body() -> None:
            for _ in range(views):
                for symbol in by_symbol:
                    view.snapshot("binance", symbol)
        return body

    return {
        "feed": (feed(old["feed"].OrderBook), feed(OrderBook)),
        "streams": (streams_old, streams_new),
        "executor": (executor(old["executor"].MarketView), executor(MarketView)),
        "executor snapshot()": (views_of(old["executor"].MarketView), views_of(MarketView)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="", help="git revision of the old books (default: before the feed's was removed)")
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE, help="recording (docs/recording.md format)")
    ap.add_argument("--depth", type=int, default=5_000, help="levels a side of the Binance-like snapshot")
    ap.add_argument("--deltas", type=int, default=2_000, help="Binance-like updates after the snapshot")
    ap.add_argument("--levels", type=int, default=60, help="levels per Binance-like update")
    ap.add_argument("--views", type=int, default=200, help="snapshot() calls per symbol and round")
    ap.add_argument("--repeat", type=int, default=5, help="rounds per stage, implementation and block")
    ap.add_argument("--blocks", type=int, default=3, help="times old and new take turns")
    args = ap.parse_args()

    rev = args.baseline or default_baseline()
    sha, head = (subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", r], capture_output=True, text=True,
                                check=True).stdout.strip() for r in (rev, "HEAD"))
    with tempfile.TemporaryDirectory() as tmp:
        old = {stage: load_old(rev, path, Path(tmp)) for stage, path in (
            ("feed", "producers/order_book.py"), ("streams", "streams/features/book.py"),
            ("executor", "executor/market.py"))}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}; shared and noisy")
    print(f"old books: {sha}; new: orderbook at {head} (+ working tree)\n")
    streams_of_records = {
        f"recording {args.file.name}": recorded(args.file),
        f"binance-like {args.depth} levels a side": binance_like(7, args.depth, args.deltas, args.levels),
    }
    for title, records in streams_of_records.items():
        n_levels = sum(len(r["bids"]) + len(r["asks"]) for r in records)
        print(f"== {title}: {len(records)} records ({sum(r['snapshot'] for r in records)} snapshots), {n_levels} levels")
        table = stages(old, records, args.views)
        best: dict[str, list[float]] = {name: [0.0, 0.0] for name in table}
        ratios: dict[str, list[float]] = {name: [] for name in table}
        for _ in range(args.blocks):
            for name, bodies in table.items():
                work = args.views * len({r["symbol"] for r in records}) if name.endswith("()") else len(records)
                rates = [work * args.repeat / _timed(args.repeat, body) for body in bodies]
                best[name] = [max(b, r) for b, r in zip(best[name], rates, strict=True)]
                ratios[name].append(rates[1] / rates[0])
        width = max(len(name) for name in table)
        print(f"{'stage':<{width}}  {'old /s':>12}  {'new /s':>12}  new/old (per block)")
        for name, (b_old, b_new) in best.items():
            print(f"{name:<{width}}  {b_old:>12,.0f}  {b_new:>12,.0f}  {b_new / b_old:.2f}x "
                  f"({min(ratios[name]):.2f}-{max(ratios[name]):.2f}x)")
        print()


if __name__ == "__main__":
    main()
