"""Serde throughput: tickpipe's framed Avro vs plain fastavro and cavro schemaless vs orjson JSON, in one run.

Measures records/s to encode and to decode a Trade, a BBO and a BookDelta (``--levels`` changed levels,
split between bids and asks), best of ``--repeats`` timed loops of ``--records`` records each, and
prints a table with the ratio of our framing to each alternative. Run with
``.venv/bin/python -m bench.serde``. Pure CPU, single thread; no broker needed.
"""

from __future__ import annotations

import argparse
import gc
import io
import platform
import time
from collections.abc import Callable
from importlib.metadata import version as _version
from typing import Any, cast

import fastavro
import orjson

from schemas.avro_body import cavro
from schemas.registry import parsed_schema, raw_schema
from schemas.serde import AvroSerde

TRADE: dict[str, Any] = {
    "venue": "binance",
    "symbol": "BTCUSDT",
    "trade_id": 3_912_004_117,
    "price": "97123.45000000",
    "qty": "0.00120000",
    "side": "buy",
    "ts_event": 1_764_158_400_123_000_000,
    "ts_recv": 1_764_158_400_124_513_221,
}

BBO: dict[str, Any] = {
    "venue": "binance",
    "symbol": "BTCUSDT",
    "update_id": 71_203_118_940,
    "bid_price": "97123.45000000",
    "bid_qty": "0.51200000",
    "ask_price": "97123.46000000",
    "ask_qty": "1.25000000",
    "ts_event": 1_764_158_400_124_513_221,
    "ts_recv": 1_764_158_400_124_513_221,
}


def book_delta(levels: int) -> dict[str, Any]:
    """Return a BookDelta with ``levels`` changed levels (half bids, half asks), venue-style decimals."""
    bids = [
        {"price": f"{97123.45 - i * 0.01:.8f}", "qty": f"{0.5 + i * 0.137:.8f}"} for i in range(levels // 2)
    ]
    asks = [
        {"price": f"{97123.46 + i * 0.01:.8f}", "qty": f"{0.25 + i * 0.071:.8f}"}
        for i in range(levels - levels // 2)
    ]
    return {
        "venue": "binance",
        "symbol": "BTCUSDT",
        "snapshot": False,
        "first_update_id": 71_203_118_921,
        "last_update_id": 71_203_118_940,
        "bids": bids,
        "asks": asks,
        "ts_event": 1_764_158_400_123_000_000,
        "ts_recv": 1_764_158_400_124_513_221,
    }


def _fastavro_codec(name: str) -> tuple[Callable[[dict[str, Any]], bytes], Callable[[bytes], dict[str, Any]]]:
    schema = parsed_schema(name)

    def encode(record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema, record)
        return buf.getvalue()

    def decode(data: bytes) -> dict[str, Any]:
        return cast(dict[str, Any], fastavro.schemaless_reader(io.BytesIO(data), schema, None))

    return encode, decode


def _cavro_codec(name: str) -> tuple[Callable[[dict[str, Any]], bytes], Callable[[bytes], dict[str, Any]]]:
    schema = cavro.Schema(raw_schema(name), record_decodes_to_dict=True)
    return schema.binary_encode, schema.binary_decode


def _seconds(fn: Callable[[Any], Any], arg: Any, records: int) -> float:
    gc.collect()  # every codec starts from the same heap; GC stays on as in a running service
    start = time.perf_counter()
    for _ in range(records):
        fn(arg)
    return time.perf_counter() - start


def measure(
    name: str, record: dict[str, Any], records: int, repeats: int
) -> dict[str, tuple[float, float, int]]:
    """Return ``{codec: (encode records/s, decode records/s, message bytes)}`` for one record.

    Codecs take turns within each repeat so that load from other processes hits them alike; the
    best loop of each is kept.
    """
    serde = AvroSerde()
    fa_encode, fa_decode = _fastavro_codec(name)
    codecs: dict[str, tuple[Callable[[dict[str, Any]], bytes], Callable[[bytes], Any]]] = {
        "tickpipe single-object": (lambda r: serde.encode(name, r), serde.decode),
        "fastavro schemaless": (fa_encode, fa_decode),
        "orjson JSON": (orjson.dumps, orjson.loads),
    }
    if cavro is not None:  # no cavro wheel on Python 3.13+
        codecs["cavro schemaless"] = _cavro_codec(name)
    messages = {codec: encode(record) for codec, (encode, _) in codecs.items()}
    for codec, (_, decode) in codecs.items():
        assert decode(messages[codec]) in (record, (name, record)), f"{codec} does not round-trip {name}"
    best = {codec: [float("inf"), float("inf")] for codec in codecs}
    for _ in range(repeats):
        for codec, (encode, decode) in codecs.items():
            best[codec][0] = min(best[codec][0], _seconds(encode, record, records))
            best[codec][1] = min(best[codec][1], _seconds(decode, messages[codec], records))
    return {codec: (records / enc, records / dec, len(messages[codec])) for codec, (enc, dec) in best.items()}


def run(records: int = 20_000, repeats: int = 5, levels: int = 20) -> None:
    """Measure both records with all codecs and print the table (callable from a CLI command)."""
    print(
        f"python {platform.python_version()}, fastavro {fastavro.__version__}, cavro {_version('cavro') if cavro is not None else 'absent'}, "
        f"orjson {orjson.__version__}; "
        f"{records} records x best of {repeats}; BookDelta with {levels} levels",
        flush=True,
    )
    header = (
        f"{'record':<10} {'codec':<24} {'encode rec/s':>13} {'decode rec/s':>13} {'bytes':>6} "
        f"{'enc ratio':>9} {'dec ratio':>9}"
    )
    print(header)
    print("-" * len(header), flush=True)
    for name, record in (("Trade", TRADE), ("BBO", BBO), ("BookDelta", book_delta(levels))):
        results = measure(name, record, records, repeats)
        ours_enc, ours_dec, _ = results["tickpipe single-object"]
        for codec, (enc, dec, size) in results.items():
            # ratio: ours / this codec (>1 means ours is faster)
            print(
                f"{name:<10} {codec:<24} {enc:>13,.0f} {dec:>13,.0f} {size:>6} "
                f"{ours_enc / enc:>9.2f} {ours_dec / dec:>9.2f}",
                flush=True,
            )


def main() -> None:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000, help="records per timed loop")
    parser.add_argument("--repeats", type=int, default=5, help="timed loops per figure (best is kept)")
    parser.add_argument("--levels", type=int, default=20, help="changed levels in the BookDelta")
    args = parser.parse_args()
    run(args.records, args.repeats, args.levels)


if __name__ == "__main__":
    main()
