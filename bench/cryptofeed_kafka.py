"""cryptofeed's Binance handler with its Kafka backend, publishing a tickpipe recording (run in the cryptofeed venv).

Called by ``bench/feed.py``: ``python cryptofeed_kafka.py RECORDING BOOTSTRAP RATE ROUNDS`` where RATE
is frames per second (0 = as fast as it goes) and ROUNDS the passes over the recording (a fresh
handler each, as tickpipe's side does). The frames go through ``Binance.message_handler`` into
cryptofeed's ``TradeKafka`` / ``BookKafka`` / ``TickerKafka`` (``cryptofeed.backends.kafka``,
aiokafka, acks=all and idempotence as tickpipe's producer), each frame stamped with its hand-in
time as ``receipt_timestamp``; the clock stops when every backend's queue is sent and acknowledged.
Prints one JSON line: frames, wall seconds, this process's CPU seconds, cryptofeed's version.
The topics (``trades|book|ticker-BINANCE-<symbol>``) must exist; bench/feed.py creates them with the
broker's append time, so each record's receive -> broker-ack latency is read back from Kafka.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cryptofeed_binance import load_recording


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    from importlib.metadata import version

    from cryptofeed.backends.kafka import BookKafka, TickerKafka, TradeKafka
    from cryptofeed.defines import L2_BOOK, TICKER, TRADES
    from cryptofeed.exchanges import Binance

    path, bootstrap, rate, rounds = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    frames, snapshots, symbols = load_recording(path)

    async def run() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        config = {"bootstrap_servers": bootstrap, "acks": "all", "enable_idempotence": True}
        backends = {TRADES: TradeKafka(**config), L2_BOOK: BookKafka(**config), TICKER: TickerKafka(**config)}

        async def read(url: str, **_kw: object) -> str:
            return snapshots[url.split("symbol=")[1].split("&")[0]]

        for backend in backends.values():
            backend.start(loop)
        while not all(b.running for b in backends.values()):  # producers connected
            await asyncio.sleep(0.05)
        for backend in backends.values():  # a producer id from the broker before the clock starts
            await backend.producer.send_and_wait("warmup", b"x")
        cpu, start, i = _cpu_s(), time.perf_counter(), 0
        for _ in range(rounds):
            feed = Binance(symbols=[f"{s[:-4]}-{s[-4:]}" for s in symbols], channels=list(backends),
                           callbacks=backends)
            feed.http_conn.read = read  # the recorded REST snapshot instead of the network
            handler = feed.message_handler
            for frame in frames:
                if rate:
                    wait = start + i / rate - time.perf_counter()
                    if wait > 0:
                        await asyncio.sleep(wait)
                await handler(frame, None, time.time())
                i += 1
        await asyncio.gather(*(b.queue.join() for b in backends.values()))  # every update sent and acknowledged
        elapsed, cpu = time.perf_counter() - start, _cpu_s() - cpu
        for backend in backends.values():
            await backend.stop()
        await asyncio.gather(*(b.worker for b in backends.values()))
        return elapsed, cpu

    seconds, cpu_s = asyncio.run(run())
    print(json.dumps({"frames": len(frames) * rounds, "seconds": seconds, "cpu_seconds": cpu_s,
                      "version": version("cryptofeed")}))


if __name__ == "__main__":
    main()
