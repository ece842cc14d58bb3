"""A real archived market for the backtest tests: the simulated exchange recorded, played back through the feed.

``tickpipe record`` captures the simulator's frames (seed fixed), ``tickpipe playback`` turns them into the
records the live feed publishes (same parser and book code), and the sink's row path archives them; the
instruments come from the simulator's own exchangeInfo, as the feed takes them.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from infra.settings import environ_without_settings

TICKPIPE = str(Path(sys.executable).parent / "tickpipe")
TOPIC_OF = {"Trade": "md.trades", "BookDelta": "md.book", "BBO": "md.bbo", "FeedEvent": "md.health"}


def record_market(rest_url: str, ws_url: str, out: Path, seconds: float, symbols: str) -> None:
    """Record ``seconds`` of the simulator's market data to ``out``."""
    subprocess.run([TICKPIPE, "record", "binance", "--out", str(out), "--seconds", str(seconds), "--symbols", symbols,
                    "--ws-url", ws_url, "--rest-url", rest_url], env=environ_without_settings(), check=True,
                   capture_output=True, timeout=seconds + 60)


def played_back(recording: Path) -> dict[str, list[dict[str, Any]]]:
    """``{topic: records}`` of a recording, in publication order."""
    out = subprocess.run([TICKPIPE, "playback", str(recording), "--venue", "binance"], env=environ_without_settings(),
                         capture_output=True, check=True, timeout=300).stdout
    history: dict[str, list[dict[str, Any]]] = {topic: [] for topic in TOPIC_OF.values()}
    for line in out.splitlines():
        record = orjson.loads(line)
        topic = TOPIC_OF.get(record.pop("type"))
        if topic is not None:
            history[topic].append(record)
    return history


def instruments(rest_url: str, at_ns: int) -> list[dict[str, Any]]:
    """The simulator's symbols as Instrument records (tick and lot size from its exchangeInfo)."""
    with urllib.request.urlopen(f"{rest_url}/api/v3/exchangeInfo", timeout=10) as answer:
        info = orjson.loads(answer.read())
    records = []
    for s in info["symbols"]:
        filters = {f["filterType"]: f for f in s["filters"]}
        records.append({"venue": "binance", "symbol": s["symbol"], "base": s["baseAsset"], "quote": s["quoteAsset"],
                        "tick_size": filters["PRICE_FILTER"]["tickSize"], "lot_size": filters["LOT_SIZE"]["stepSize"],
                        "ts_event": at_ns, "ts_recv": at_ns})
    return records
