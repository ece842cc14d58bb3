"""cryptofeed's Binance handler on the frames of a tickpipe recording (run in the cryptofeed bench venv).

Called by ``bench/feed.py``; prints one JSON line ``{"frames", "seconds", "version"}`` where
``seconds`` is the fastest round times the rounds (as for tickpipe's stages). Recorded
``trade`` frames are reshaped to ``aggTrade`` (cryptofeed's spot trade channel) before timing; the
depth snapshot comes from the recording through cryptofeed's own ``_snapshot`` code; a counting
callback per channel makes cryptofeed build the objects a user would receive (the counts are
printed, to show every frame was handled).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable

CALLS = {"trades": 0, "book": 0, "ticker": 0}


def _counter(channel: str) -> Callable[..., Awaitable[None]]:
    async def callback(*_args: object) -> None:
        CALLS[channel] += 1

    return callback


def load_recording(path: str) -> tuple[list[str], dict[str, str], list[str]]:
    """The recording's websocket frames (``trade`` reshaped to ``aggTrade``), REST snapshots by symbol, symbols.

    Also registers the symbols with cryptofeed, as its exchange-info request would.
    """
    from cryptofeed.exchanges import Binance
    from cryptofeed.symbols import Symbols

    frames: list[str] = []
    snapshots: dict[str, str] = {}
    symbols: set[str] = set()
    with open(path, "rb") as f:
        for line in f:
            rec = json.loads(line)
            if rec["kind"] == "rest":
                sym = rec["url"].split("symbol=")[1].split("&")[0]
                snapshots[sym] = rec["data"]
            elif rec["kind"] == "ws":
                msg = json.loads(rec["data"])
                data = msg["data"]
                symbols.add(msg["stream"].split("@")[0].upper())
                if data.get("e") == "trade":
                    data = {**data, "e": "aggTrade", "a": data["t"], "f": data["t"], "l": data["t"]}
                    msg = {"stream": msg["stream"].replace("@trade", "@aggTrade"), "data": data}
                frames.append(json.dumps(msg))
    info = {"symbols": [
        {"symbol": s, "baseAsset": s[:-4], "quoteAsset": s[-4:], "status": "TRADING",
         "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.01"}]}
        for s in sorted(symbols)
    ]}
    syms, sym_info = Binance._parse_symbol_data(info)
    Symbols.set(Binance.id, syms, sym_info)
    return frames, snapshots, sorted(symbols)


def main() -> None:
    from importlib.metadata import version

    from cryptofeed.defines import L2_BOOK, TICKER, TRADES
    from cryptofeed.exchanges import Binance

    path, repeat = sys.argv[1], int(sys.argv[2])
    frames, snapshots, symbols = load_recording(path)

    async def run() -> float:
        best = float("inf")
        for _ in range(repeat):
            feed = Binance(symbols=[f"{s[:-4]}-{s[-4:]}" for s in sorted(symbols)], channels=[TRADES, L2_BOOK, TICKER],
                           callbacks={TRADES: _counter("trades"), L2_BOOK: _counter("book"), TICKER: _counter("ticker")})

            async def read(url: str, **_kw: object) -> str:
                return snapshots[url.split("symbol=")[1].split("&")[0]]

            feed.http_conn.read = read  # the recorded REST snapshot instead of the network
            handler = feed.message_handler
            start = time.perf_counter()
            for frame in frames:
                await handler(frame, None, 0.0)
            best = min(best, time.perf_counter() - start)
        return best * repeat

    seconds = asyncio.run(run())
    print(json.dumps({"frames": len(frames) * repeat, "seconds": seconds, "version": version("cryptofeed"),
                      "callbacks_per_round": {k: v // repeat for k, v in CALLS.items()}}))


if __name__ == "__main__":
    main()
