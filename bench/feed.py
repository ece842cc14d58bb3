"""Feed throughput on a recorded file, per venue: tickpipe's parse + book + normalize (+ Avro encode)
(+ Kafka), and (Binance) cryptofeed's Binance handler on the same frames, in one run.

Every stage replays the recording's frames (already in memory) through a fresh pipeline per
round, ``--repeat`` rounds; the stages, cryptofeed included, take turns ``--blocks`` times so that
load from other processes hits them alike. Figures are websocket frames per second on one thread,
from the fastest round over all blocks (the least disturbed on a shared machine; cryptofeed is timed
the same way), plus the range of the ratios to cryptofeed within each block:

* ``parse``: ``parse_frame`` only;
* ``parse+book+normalize``: the full :class:`FeedPipeline` (merge, book sync or per-connection books
  with Kraken's checksum / Coinbase's sequence check, records) into a null sink;
* ``... + encode``: the same, each record Avro-encoded with ``AvroSerde`` (what goes to Kafka);
* ``... + publish``: the same into a real ``KafkaPublisher`` on a private local broker, until flushed;
* ``cryptofeed``: ``Binance.message_handler`` of cryptofeed (in ``bench/.venv-cryptofeed``, created on
  first run with ``pip install cryptofeed==2.4.1``; skipped with the reason if that fails);
* publishing compared (:func:`bench_kafka_compare`): tickpipe's feed into its ``KafkaPublisher`` and
  cryptofeed's handler into its own Kafka backend (``cryptofeed.backends.kafka``, what a cryptofeed
  user runs), the same frames to one private broker, delivery confirmed: frames/s and frames per
  CPU-second as fast as each goes, then frame receive -> broker ack p50/p99 paced at ``--kafka-rate``.

Run: ``.venv/bin/python -m bench.feed [--venue binance|kraken|coinbase] [--file REC.jsonl | --record-seconds S]
[--repeat N] [--blocks B] [--no-kafka] [--no-cryptofeed]``; ``--record-seconds`` first records that long from a
fresh simulated exchange (``--events-per-s``) with ``tickpipe record``, so the mix is a realistic one (Kraken and
Coinbase have no stored recording: give ``--record-seconds`` or ``--file``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from producers.errors import ParseError
from producers.health import FeedEvents
from producers.metrics import FeedMetrics
from producers.pipeline import FeedPipeline, RecordSink
from producers.recording import read_recording
from producers.registry import adapter_for
from schemas.serde import AvroSerde

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT / "tests" / "fixtures" / "binance" / "sim_recording.jsonl"
CF_VENV = ROOT / "bench" / ".venv-cryptofeed"
CF_VERSION = "2.4.1"
CF_STAGE = "cryptofeed Binance.message_handler"

VENUE_SYMBOLS = {"binance": "BTCUSDT,ETHUSDT", "kraken": "BTC/USDT,ETH/USDT", "coinbase": "BTC-USDT,ETH-USDT"}
"""What ``--record-seconds`` records per venue (the simulator's BTCUSDT and ETHUSDT, in each venue's names)."""

Line = tuple[int, str, str, str]
VENUE = "binance"


def _replay(lines: list[Line], sink: RecordSink) -> None:
    adapter = adapter_for(VENUE)
    pipeline = FeedPipeline(adapter, [], sink, FeedEvents(VENUE, "bench"), FeedMetrics(CollectorRegistry()),
                            learn_symbols=bool(adapter.subscribe_messages(["X"])))
    frame, rest, tick = pipeline.frame, pipeline.rest, pipeline.tick
    next_tick = 0
    for t, kind, url, data in lines:
        if kind == "ws":
            frame("bench", data, t)
        elif kind == "rest":
            rest(url, data, t)
        else:
            pipeline.add_symbols(adapter.stream_symbols(url))
            pipeline.open("bench", url, t)
        if t >= next_tick:
            tick(t)
            next_tick = t + 20_000_000


def _timed(rounds: int, body: Callable[[], None]) -> float:
    # best round x rounds: on a shared, noisy machine the fastest round is the least disturbed one
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        body()
        best = min(best, time.perf_counter() - start)
    return best * rounds


def bench_parse(lines: list[Line], rounds: int) -> float:
    frames = [(d, t) for t, k, _, d in lines if k == "ws"]

    def body() -> None:
        parse_frame = adapter_for(VENUE).parse_frame  # a fresh parser each round (Kraken's learns precisions)
        for data, t in frames:
            try:
                parse_frame(data, t)
            except ParseError:
                pass  # what the pipeline would dead-letter

    return _timed(rounds, body)


def bench_pipeline(lines: list[Line], rounds: int, encode: bool) -> tuple[float, int]:
    serde = AvroSerde()
    records = [0]

    def null_sink(topic: str, key: bytes, name: str, record: dict[str, Any]) -> None:
        records[0] += 1

    def encode_sink(topic: str, key: bytes, name: str, record: dict[str, Any]) -> None:
        serde.encode(name, record)
        records[0] += 1

    sink = encode_sink if encode else null_sink
    return _timed(rounds, lambda: _replay(lines, sink)), records[0] // rounds


def bench_publish(lines: list[Line], rounds: int) -> tuple[float, str]:
    from infra.broker import private_broker
    from producers.publisher import KafkaPublisher

    data_dir = Path(tempfile.gettempdir()) / f"bench-feed-kafka-{time.time_ns()}"
    with private_broker(data_dir) as (kafka, _):
        events = FeedEvents(VENUE, "bench")
        publisher = KafkaPublisher(kafka, events, FeedMetrics(CollectorRegistry()), time.time_ns,
                                   buffer_max_records=2_000_000)
        publish, poll = publisher.publish, publisher.poll
        count = [0]

        def sink(topic: str, key: bytes, name: str, record: dict[str, Any]) -> None:
            publish(topic, key, name, record)
            count[0] += 1
            if count[0] % 1000 == 0:
                poll()

        def body() -> None:
            _replay(lines, sink)

        gc.collect()
        start = time.perf_counter()
        for _ in range(rounds):
            body()
        left = publisher.flush(60)
        elapsed = time.perf_counter() - start
        note = f"{publisher.delivered} delivered, {publisher.failed} failed, {left} unflushed"
        return elapsed, note


def _cryptofeed_python() -> tuple[Path | None, str]:
    python = CF_VENV / "bin" / "python"
    if (CF_VENV / ".installed").exists():
        return python, ""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(CF_VENV)], check=True, capture_output=True, timeout=120)
        # the kafka extra brings aiokafka for cryptofeed.backends.kafka
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"cryptofeed[kafka]=={CF_VERSION}"],
                       check=True, capture_output=True, timeout=600)
        (CF_VENV / ".installed").touch()
        return python, ""
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        return None, f"cryptofeed=={CF_VERSION} did not install: {exc} {detail.decode(errors='replace')[-300:]}"


def bench_cryptofeed(path: Path, rounds: int) -> tuple[float | None, str]:
    python, reason = _cryptofeed_python()
    if python is None:
        return None, reason
    out = subprocess.run([str(python), str(ROOT / "bench" / "cryptofeed_binance.py"), str(path), str(rounds)],
                         capture_output=True, text=True, timeout=900, check=False)
    if out.returncode != 0:
        return None, f"cryptofeed run failed: {out.stderr[-500:]}"
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["frames"] / result["seconds"], f"cryptofeed {result['version']}, callbacks/round {result['callbacks_per_round']}"


CF_TOPIC_KEYS = ("trades", "book", "ticker")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _replay_live(lines: list[Line], sink: RecordSink, rate: float, rounds: int) -> int:
    """Replay ``rounds`` times (a fresh pipeline each) with the real clock as receive time, ``rate`` frames/s
    (0 = as fast as it goes); return the frames."""
    frames, start = 0, time.perf_counter()
    for _ in range(rounds):
        frames = _replay_round(lines, sink, rate, start, frames)
    return frames


def _replay_round(lines: list[Line], sink: RecordSink, rate: float, start: float, frames: int) -> int:
    adapter = adapter_for("binance")
    pipeline = FeedPipeline(adapter, [], sink, FeedEvents("binance", "bench"), FeedMetrics(CollectorRegistry()))
    next_tick = 0
    for _, kind, url, data in lines:
        now = time.time_ns()
        if kind == "ws":
            if rate:
                wait = start + frames / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                now = time.time_ns()
            pipeline.frame("bench", data, now)
            frames += 1
        elif kind == "rest":
            pipeline.snapshot(url, data, now)
        else:
            pipeline.add_symbols(adapter.stream_symbols(url))
            pipeline.open("bench", url, now)
        if now >= next_tick:
            pipeline.tick(now)
            next_tick = now + 20_000_000
    pipeline.tick(time.time_ns() + 1_000_000_000)  # release what waits for a missing event: the round is over
    return frames


def _ack_latencies_ms(bootstrap: str, topics: list[str], recv_ns: Callable[[bytes], int], since_ns: int) -> list[float]:
    """Broker append time minus the receive time each record carries, for the records received since ``since_ns``."""
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME

    from infra.topics import read_to_end

    out = []
    for topic in topics:
        for msg in read_to_end(bootstrap, topic):
            kind, ms = msg.timestamp()
            recv = recv_ns(msg.value())
            if kind == TIMESTAMP_LOG_APPEND_TIME and recv >= since_ns:
                out.append(ms - recv / 1e6)
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _warm_up(publisher: Any) -> None:
    """Publish and flush one record first: a new idempotent producer sends nothing before the broker gave it
    a producer id, which would otherwise count as the first records' latency."""
    from schemas.topics import Topic

    publisher.publish(Topic.HEALTH.value, b"bench:warmup", "FeedEvent", {
        "venue": "bench", "symbol": "", "event_id": f"warmup-{time.time_ns()}", "kind": "connect",
        "connection_id": "bench", "detail": "warm-up", "ts_event": 0, "ts_recv": 0})
    publisher.flush(30)


def bench_kafka_compare(path: Path, lines: list[Line], rate: float, rounds: int) -> list[tuple[str, float, float, str]]:
    """tickpipe's feed and cryptofeed's Kafka backend publishing the same frames to one local broker.

    Each publishes twice: as fast as it goes (frames/s until every record is acknowledged, and frames
    per CPU-second of its process) and paced at ``rate`` frames/s (frame receive -> broker append time,
    read back from the records: tickpipe's ``ts_recv``, cryptofeed's ``receipt_timestamp``).
    Returns rows (system and phase, frames/s, frames per CPU-second, note).
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    from infra.broker import private_broker
    from producers.publisher import KafkaPublisher
    from schemas.topics import Topic

    python, reason = _cryptofeed_python()
    serde = AvroSerde()
    md_topics = [Topic.TRADES.value, Topic.BOOK.value, Topic.BBO.value]
    rows: list[tuple[str, float, float, str]] = []
    data_dir = Path(tempfile.gettempdir()) / f"bench-feed-compare-{time.time_ns()}"
    with private_broker(data_dir) as (kafka, _):
        symbols = sorted({json.loads(d)["stream"].split("@")[0].upper() for _, k, _, d in lines if k == "ws"})
        cf_topics = [f"{key}-BINANCE-{s[:-4]}-{s[-4:]}" for key in CF_TOPIC_KEYS for s in symbols]
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
        for future in admin.create_topics([NewTopic(t, 1, 1, config={"message.timestamp.type": "LogAppendTime"})
                                           for t in [*cf_topics, "warmup"]]).values():
            future.result()
        for phase_rate in (0.0, rate):
            phase = f"paced {rate:,.0f} frames/s" if phase_rate else "as fast as it goes"
            publisher = KafkaPublisher(kafka, FeedEvents("binance", "bench"), FeedMetrics(CollectorRegistry()),
                                       time.time_ns, buffer_max_records=2_000_000)
            _warm_up(publisher)
            delivered = publisher.delivered

            def sink(topic: str, key: bytes, name: str, record: dict[str, Any], pub: KafkaPublisher = publisher) -> None:
                pub.publish(topic, key, name, record)
                pub.poll()

            since, cpu, start = time.time_ns(), _cpu_s(), time.perf_counter()
            frames = _replay_live(lines, sink, phase_rate, rounds)
            left = publisher.flush(60)
            elapsed, cpu = time.perf_counter() - start, _cpu_s() - cpu
            lat = _ack_latencies_ms(kafka.bootstrap, md_topics, lambda v: serde.decode(v)[1]["ts_recv"], since)
            note = (f"{publisher.delivered - delivered} records acknowledged, {left} unflushed; receive -> broker ack "
                    f"p50 {_pct(lat, 0.5):.1f} ms, p99 {_pct(lat, 0.99):.1f} ms")
            rows.append((f"tickpipe feed, {phase}", frames / elapsed, frames / cpu, note))
            if python is None:
                continue
            since = time.time_ns()
            out = subprocess.run([str(python), str(ROOT / "bench" / "cryptofeed_kafka.py"), str(path),
                                  kafka.bootstrap, str(phase_rate), str(rounds)], capture_output=True, text=True, timeout=900,
                                 check=False)
            if out.returncode != 0:
                python, reason = None, f"cryptofeed Kafka run failed: {out.stderr[-500:]}"
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            lat = _ack_latencies_ms(kafka.bootstrap, cf_topics,
                                    lambda v: int(json.loads(v)["receipt_timestamp"] * 1e9), since)
            note = (f"{len(lat)} records acknowledged; receive -> broker ack "
                    f"p50 {_pct(lat, 0.5):.1f} ms, p99 {_pct(lat, 0.99):.1f} ms")
            rows.append((f"cryptofeed {r['version']} + Kafka backend, {phase}", r["frames"] / r["seconds"],
                         r["frames"] / r["cpu_seconds"], note))
    if python is None:
        rows.append((f"cryptofeed + Kafka backend: skipped ({reason})", float("nan"), float("nan"), ""))
    return rows


def record_from_sim(seconds: float, events_per_s: float, out: Path) -> None:
    """Record ``seconds`` of BTCUSDT+ETHUSDT, in the venue's protocol, from a fresh simulated exchange into ``out``."""
    from sim_exchange.process import start_sim_exchange

    sim = start_sim_exchange(log_path=out.with_suffix(".sim.log"), seed=7, symbols="BTCUSDT,ETHUSDT",
                             events_per_s=events_per_s)
    try:
        subprocess.run([str(Path(sys.executable).parent / "tickpipe"), "record", VENUE, "--symbols", VENUE_SYMBOLS[VENUE],
                        "--out", str(out), "--seconds", str(seconds), "--ws-url", sim.ws_url, "--rest-url", sim.rest_url],
                       check=True, timeout=seconds + 120)
    finally:
        sim.stop()


def main() -> None:
    global VENUE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venue", choices=sorted(VENUE_SYMBOLS), default="binance", help="venue whose adapter replays")
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE, help="recording (docs/recording.md format)")
    ap.add_argument("--record-seconds", type=float, default=0.0, help="record this long from a simulator first")
    ap.add_argument("--events-per-s", type=float, default=2000.0, help="simulator pace when recording")
    ap.add_argument("--repeat", type=int, default=200, help="rounds over the recording per stage and block")
    ap.add_argument("--blocks", type=int, default=3, help="times the stages take turns (best round of all is kept)")
    ap.add_argument("--no-kafka", action="store_true", help="skip the stage that publishes to a local broker")
    ap.add_argument("--no-cryptofeed", action="store_true", help="skip the cryptofeed comparison")
    ap.add_argument("--kafka-rate", type=float, default=1000.0,
                    help="frames/s of the paced publishing comparison (receive -> broker ack latency)")
    args = ap.parse_args()
    VENUE = args.venue
    if VENUE != "binance":
        if args.file == DEFAULT_FILE and args.record_seconds <= 0:
            ap.error(f"no stored {VENUE} recording: give --record-seconds S or --file REC.jsonl")
        args.no_cryptofeed = True  # the comparison is cryptofeed's Binance handler

    if args.record_seconds > 0:
        args.file = Path(tempfile.gettempdir()) / f"bench-feed-{os.getpid()}.jsonl"
        record_from_sim(args.record_seconds, args.events_per_s, args.file)
    lines = list(read_recording(args.file))
    n_frames = sum(1 for _, k, _, _ in lines if k == "ws")
    total = n_frames * args.repeat
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}; shared and noisy; venue {VENUE}")
    kinds: dict[str, int] = {}
    for _, k, _, d in lines:
        if k == "ws":
            if VENUE == "binance":
                key = "depth" if "depthUpdate" in d else "trade" if '"trade"' in d else "bookTicker"
            else:
                key = d.partition('"channel":"')[2].partition('"')[0] or "response"
            kinds[key] = kinds.get(key, 0) + 1
    print(f"recording: {args.file.name}, {n_frames} frames {kinds} x {args.repeat} rounds = {total} frames\n")
    # stages take turns block after block (cryptofeed too), so load from other processes hits them
    # alike; each figure is its best round over all blocks, each ratio is also given per block
    stages = ["parse only", "parse + book + normalize", "parse + book + normalize + Avro encode"]
    best: dict[str, float] = {}
    notes: dict[str, str] = {}
    ratios: list[tuple[float, float]] = []
    for block in range(args.blocks):
        rates = {stages[0]: total / bench_parse(lines, args.repeat)}
        t, per_round = bench_pipeline(lines, args.repeat, encode=False)
        rates[stages[1]] = total / t
        notes[stages[1]] = f"{per_round} records/round"
        t, _ = bench_pipeline(lines, args.repeat, encode=True)
        rates[stages[2]] = total / t
        if not args.no_cryptofeed:
            cf_rate, note = bench_cryptofeed(args.file, args.repeat)
            if cf_rate is None:
                print(f"cryptofeed column skipped: {note}")
                args.no_cryptofeed = True
            else:
                rates[CF_STAGE], notes[CF_STAGE] = cf_rate, note
                ratios.append((rates[stages[1]] / cf_rate, rates[stages[2]] / cf_rate))
        for stage, rate in rates.items():
            best[stage] = max(best.get(stage, 0.0), rate)
        print(f"block {block + 1}/{args.blocks}: " + ", ".join(f"{k} {v:,.0f}" for k, v in rates.items()), flush=True)
    rows = [(stage, best[stage], notes.get(stage, "")) for stage in stages]
    if not args.no_kafka:
        rounds = max(1, args.repeat // 4)
        t, note = bench_publish(lines, rounds)
        rows.append(("... + publish to the local Kafka (until flushed)", n_frames * rounds / t, note))
    if CF_STAGE in best:
        rows.append((CF_STAGE, best[CF_STAGE], notes[CF_STAGE]))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'stage':<{width}}  {'frames/s':>10}  note")
    for name, rate, note in rows:
        print(f"{name:<{width}}  {rate:>10,.0f}  {note}")
    if not args.no_kafka and VENUE == "binance":  # the comparison is with cryptofeed's Binance handler
        compare = bench_kafka_compare(args.file, lines, args.kafka_rate, max(1, args.repeat // 4))
        print("\npublishing to the local Apache Kafka, delivery confirmed (acks=all, idempotent), same frames:")
        print("| publisher | frames/s | frames per CPU-second | note |")
        print("|---|---|---|---|")
        for name, rate, per_cpu, note in compare:
            print(f"| {name} | {rate:,.0f} | {per_cpu:,.0f} | {note} |")
        fast = {n.split(",")[0].split(" ")[0]: (r, c) for n, r, c, _ in compare if "as fast" in n}
        if "tickpipe" in fast and "cryptofeed" in fast:
            print(f"tickpipe / cryptofeed: {fast['tickpipe'][0] / fast['cryptofeed'][0]:.1f}x frames/s, "
                  f"{fast['tickpipe'][1] / fast['cryptofeed'][1]:.1f}x frames per CPU-second")
    if ratios:
        cf_best = best[CF_STAGE]
        print(f"\nratio vs cryptofeed (best rounds): parse+book+normalize {best[stages[1]] / cf_best:.2f}x, "
              f"with Avro encode {best[stages[2]] / cf_best:.2f}x")
        print(f"ratio per block: parse+book+normalize {min(r[0] for r in ratios):.2f}-{max(r[0] for r in ratios):.2f}x, "
              f"with Avro encode {min(r[1] for r in ratios):.2f}-{max(r[1] for r in ratios):.2f}x")

if __name__ == "__main__":
    main()
