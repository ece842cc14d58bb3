"""Whole-pipeline benchmark: the highest simulated-exchange event rate the local stack sustains, and
tick-to-order latency at half of it.

One ``tickpipe up`` of every service (broker, warehouse, sim-exchange, feed with 2 connections,
streams, sink, executor) on a private ``TICKPIPE_HOME`` and free ports. Then:

1. **Rate steps.** The exchange's background flow is set (``POST /_sim/flow``) to each rate of
   ``--rates`` in turn and held ``--step-s`` seconds. Every ``--sample-s`` the backlog of each stage
   is sampled: the feed (exchange trades not yet in ``md.trades``, and frames queued on the
   exchange's side of each websocket), and every consumer group's lag (streams, sink, executor:
   committed offsets against end offsets). A step is *sustained* when every stage's lag stays
   bounded (``bench/_pipeline_verdict.py``: no upward trend, at most a few seconds of input
   behind). Stepping stops at the first step that is not sustained; each step also shows the CPU
   share of every service, so the stage that saturates first shows itself.
2. **Latency.** The flow is set to half the highest sustained rate; once the backlog has drained,
   signals and orders are collected for ``--latency-s``. Tick-to-order = the ``ts_recv`` of the
   market-data input that produced a signal (stamped by the feed) -> the ``ts_emit`` of the first
   order the executor sent for it (``pending_new``); also tick -> signal, signal -> order and
   tick -> venue answer, and every hop in between from the stamps the records carry (feed receive,
   Kafka ack of the md record, streams input, signal, Kafka ack of the signal, executor input, order
   sent, venue answer). ``--latency-rate`` measures at a given rate instead. Signals come faster than by default (cooldown 1 s instead of 5 s) and
   with a target every symbol can trade (0.01), so that the window holds enough of them.

The stack is stopped by pid at the end, also on Ctrl-C or SIGTERM (and by a watchdog when the
benchmark is killed). The whole run takes 3-6 minutes.

    .venv/bin/python -m bench.pipeline [--rates 200,500,1000,2000,3000,4000,6000] [--step-s 25]
        [--latency-s 50] [--signal-cooldown-ms 1000] [--signal-target-qty 0.01] [--all-steps]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from bench._local_stack import LocalStack, local_stack
from bench._pipeline_verdict import LagSeries, LagVerdict, judge, percentile
from infra.processes import descendants
from infra.settings import ExecutorSettings, KafkaSettings, SinkSettings, StreamsSettings
from infra.topics import read_to_end
from schemas.serde import AvroSerde
from schemas.topics import Topic

CLK_TCK = os.sysconf("SC_CLK_TCK")
GROUP_STAGE = {  # the stages' consumer groups (default settings: the bench sets no group ids)
    StreamsSettings().app_id: "streams",
    SinkSettings().group_id: "sink",
    ExecutorSettings().group_id: "executor",
}
# Verdict thresholds (see bench._pipeline_verdict.judge).
MAX_BEHIND_S = 3.0  # Faust commits every second, the sink after each 0.5 s batch: ~1-2 s is normal
MAX_GROWTH_FRAC = 0.08
FLOOR_MSGS = 500


# ----------------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class Sample:
    """One look at every stage."""

    t_start: float  # monotonic seconds when sampling began
    t: float  # monotonic seconds when it ended
    flow_steps: int  # background events the exchange has run
    venue_trades: int
    md_trades: int
    ws_frames: int  # frames the exchange has sent, all connections
    ws_queued: int  # frames waiting on the exchange's side, worst connection
    group_lag: dict[str, int]
    group_end: dict[str, int]
    programs: dict[str, int]  # service -> program pid
    cpu_ticks: dict[str, dict[int, int]]  # service -> pid -> CPU clock ticks
    runq_wait_ns: dict[str, dict[int, int]]  # service -> pid -> ns runnable but waiting for a core
    machine_ticks: tuple[int, int]  # (busy, total) of every core, from /proc/stat


class Prober:
    """Reads the exchange's counters, topic ends, consumer-group lags and per-service CPU time."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.sim = stack.url("sim-exchange")
        self.kafka = KafkaSettings(bootstrap=stack.record.bootstrap)
        self.http = requests.Session()
        self.serde = AvroSerde()
        self.admin = AdminClient({"bootstrap.servers": self.kafka.bootstrap, "log_level": 0})
        meta = self.admin.list_topics(Topic.TRADES.value, timeout=10).topics[Topic.TRADES.value].partitions
        self.trades_partitions = {(Topic.TRADES.value, p) for p in meta}
        self.missed_trades = self.trades_before_feed()

    def set_rate(self, events_per_s: float) -> None:
        self.http.post(f"{self.sim}/_sim/flow", json={"events_per_s": events_per_s}, timeout=10).raise_for_status()

    def group_lags(self) -> tuple[dict[str, int], dict[str, int]]:
        """Lag and summed end offsets per stage, in a few batched admin requests.

        One ListOffsets request covers every partition (``infra.consumer_lag.group_lags`` also
        reads low offsets and group states, which a sample does not need).
        """
        groups = [g.group_id for g in self.admin.list_consumer_groups(request_timeout=10).result().valid]
        committed: dict[str, list[TopicPartition]] = {}
        for group in groups:
            future = self.admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=10)
            committed[group] = [tp for tp in future[group].result().topic_partitions if tp.offset >= 0]
        ends = self.latest_offsets({(tp.topic, tp.partition) for tps in committed.values() for tp in tps})
        lag: dict[str, int] = defaultdict(int)
        end: dict[str, int] = defaultdict(int)
        for group, tps in committed.items():
            stage = GROUP_STAGE.get(group, group)
            for tp in tps:
                high = ends[(tp.topic, tp.partition)]
                lag[stage] += max(0, high - tp.offset)
                end[stage] += high
        return dict(lag), dict(end)

    def latest_offsets(self, partitions: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """End offsets in one ListOffsets request."""
        if not partitions:
            return {}
        futures = self.admin.list_offsets(
            {TopicPartition(t, p): OffsetSpec.latest() for t, p in partitions}, request_timeout=10
        )
        return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}

    def trades_before_feed(self, timeout_s: float = 60.0) -> int:
        """Trades the exchange made before the feed's first published one (never on the websocket).

        Trade ids are contiguous per symbol from 1, so the first id of each symbol in ``md.trades``
        says how many went by before the feed subscribed.
        """
        symbols = set(self.http.get(f"{self.sim}/_sim/health", timeout=10).json()["symbols"])
        first: dict[str, int] = {}
        deadline = time.monotonic() + timeout_s
        while set(first) != symbols and time.monotonic() < deadline:
            for value in _values(self.kafka.bootstrap, Topic.TRADES):
                trade = self.serde.decode_as("Trade", value)
                first[trade["symbol"]] = min(first.get(trade["symbol"], trade["trade_id"]), trade["trade_id"])
            time.sleep(1.0)
        if set(first) != symbols:
            raise SystemExit(f"no trade of {sorted(symbols - set(first))} in md.trades within {timeout_s:.0f}s")
        return sum(i - 1 for i in first.values())

    def sample(self) -> Sample:
        started = time.monotonic()
        # md.trades' end first, the exchange's count after: in-flight trades count as feed lag.
        # (infra.topics.end_offsets is exact but waits up to its timeout for a partition's EOF
        # while trades keep arriving: ~10 s per sample here.)
        md_trades = sum(self.latest_offsets(self.trades_partitions).values())
        health = self.http.get(f"{self.sim}/_sim/health", timeout=10).json()
        conns = self.http.get(f"{self.sim}/_sim/connections", timeout=10).json()
        lag, end = self.group_lags()
        programs = self.stack.programs()
        pids = {name: {pid} | descendants(pid) for name, pid in programs.items()}  # a service's own children count as the service
        return Sample(
            t_start=started,
            t=time.monotonic(),
            flow_steps=int(health["flow_steps"]),
            venue_trades=sum(health["trades"].values()) - self.missed_trades,
            md_trades=md_trades,
            ws_frames=sum(c["frames_sent"] for c in conns),
            ws_queued=max((c["queued"] for c in conns), default=0),
            group_lag=dict(lag),
            group_end=dict(end),
            programs=programs,
            cpu_ticks={name: {p: _cpu_ticks(p) for p in group} for name, group in pids.items()},
            runq_wait_ns={name: {p: _runq_wait_ns(p) for p in group} for name, group in pids.items()},
            machine_ticks=_machine_ticks(),
        )


def _machine_ticks() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _runq_wait_ns(pid: int) -> int:
    # schedstat's second field: ns this thread was runnable but waiting for a core. A service that
    # waits about as long as it runs is starved of CPU, not slow by itself.
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(task.read_text().split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


def _growth(first: dict[int, int], last: dict[int, int]) -> int:
    # per pid: a process started during the step counts from zero (its whole life is in the step)
    return sum(value - first.get(pid, 0) for pid, value in last.items())


# ----------------------------------------------------------------------------------- rate steps


@dataclass
class StepResult:
    """What one rate step measured."""

    target: float
    samples: list[Sample] = field(default_factory=list)
    verdicts: list[LagVerdict] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.samples[-1].t - self.samples[0].t

    def per_s(self, value: Callable[[Sample], int]) -> float:
        first, last = self.samples[0], self.samples[-1]
        return (value(last) - value(first)) / max(self.seconds, 1e-9)

    @property
    def achieved(self) -> float:
        return self.per_s(lambda s: s.flow_steps)

    @property
    def sustained(self) -> bool:
        return all(v.bounded for v in self.verdicts) and not self.restarted()

    def restarted(self) -> list[str]:
        """Services that supervisord restarted (or that stopped) during the step."""
        first = self.samples[0].programs
        return sorted(n for n in first if any(s.programs.get(n) != first[n] for s in self.samples))

    def cpu_percent(self) -> dict[str, float]:
        first, last = self.samples[0], self.samples[-1]
        return {
            name: 100.0 * _growth(first.cpu_ticks.get(name, {}), ticks) / CLK_TCK / max(self.seconds, 1e-9)
            for name, ticks in last.cpu_ticks.items()
        }

    def runq_wait_percent(self) -> dict[str, float]:
        """Per service: time its threads waited for a core, in % of the step (summed over threads)."""
        first, last = self.samples[0], self.samples[-1]
        return {
            name: 100.0 * _growth(first.runq_wait_ns.get(name, {}), waits) / 1e9 / max(self.seconds, 1e-9)
            for name, waits in last.runq_wait_ns.items()
        }

    def machine_busy_percent(self) -> float:
        """Share of all cores busy during the step (the stack and everything else on the machine)."""
        (b0, t0), (b1, t1) = self.samples[0].machine_ticks, self.samples[-1].machine_ticks
        return 100.0 * (b1 - b0) / max(t1 - t0, 1)

    def stack_percent(self) -> float:
        """CPU of every service together, in % of one core."""
        return sum(self.cpu_percent().values())

    def series(self) -> list[LagSeries]:
        t0 = self.samples[0].t
        out = [
            LagSeries("feed", tuple((s.t - t0, s.venue_trades - s.md_trades) for s in self.samples),
                      self.per_s(lambda s: s.venue_trades)),
            LagSeries("feed-ws", tuple((s.t - t0, s.ws_queued) for s in self.samples),
                      self.per_s(lambda s: s.ws_frames)),
        ]
        groups = sorted({g for s in self.samples for g in s.group_lag})
        for group in groups:
            out.append(LagSeries(
                group, tuple((s.t - t0, s.group_lag.get(group, 0)) for s in self.samples),
                self.per_s(lambda s, g=group: s.group_end.get(g, 0)),
            ))
        return out


def run_step(prober: Prober, target: float, step_s: float, sample_s: float, settle_s: float) -> StepResult:
    """Hold ``target`` events/s for ``step_s`` seconds, sampling every ``sample_s``; judge every stage."""
    prober.set_rate(target)
    result = StepResult(target)
    started = time.monotonic()
    while True:
        sample = prober.sample()
        result.samples.append(sample)
        lags = " ".join(f"{k}={v:,}" for k, v in sorted(sample.group_lag.items()))
        print(f"  {target:>6,.0f} ev/s  t={sample.t - started:5.1f}s  feed lag={sample.venue_trades - sample.md_trades:,} "
              f"ws queued={sample.ws_queued:,}  {lags}  (sampled in {sample.t - sample.t_start:.1f}s)", flush=True)
        if sample.t - started >= step_s and len(result.samples) >= 2:  # a rate needs two samples
            break
        time.sleep(max(0.0, sample_s - (time.monotonic() - sample.t)))
    result.verdicts = [judge(s, settle_s, MAX_BEHIND_S, MAX_GROWTH_FRAC, FLOOR_MSGS) for s in result.series()]
    return result


def print_step(result: StepResult) -> None:
    inputs = {s.stage: s.input_per_s for s in result.series()}
    verdicts = ", ".join(
        f"{v.stage} {'ok' if v.bounded else 'GROWING'} (in {inputs[v.stage]:,.0f}/s, lag {v.final_lag:,}, "
        f"{v.growth_per_s:+,.0f}/s, median {v.behind_s:.1f}s behind)"
        for v in result.verdicts
    )
    wait = result.runq_wait_percent()
    cpu = ", ".join(f"{k} {v:.0f}% (waited {wait.get(k, 0):.0f}%)"
                    for k, v in sorted(result.cpu_percent().items(), key=lambda kv: -kv[1]))
    print(f"  -> target {result.target:,.0f}, achieved {result.achieved:,.0f} ev/s, "
          f"md.trades {result.per_s(lambda s: s.md_trades):,.0f}/s: "
          f"{'SUSTAINED' if result.sustained else 'NOT sustained'}\n     {verdicts}\n"
          f"     cpu, and time waiting for a core (% of one core): {cpu}; stack {result.stack_percent():.0f}%, "
          f"machine {result.machine_busy_percent():.0f}% busy of {os.cpu_count()} cores", flush=True)
    if result.restarted():
        print(f"     RESTARTED during the step (supervisord; see its log): {', '.join(result.restarted())}", flush=True)


def wait_drained(prober: Prober, timeout_s: float) -> float | None:
    """Wait until every stage's backlog is small again; return the seconds it took (None: it did not)."""
    started = time.monotonic()
    previous = prober.sample()
    while time.monotonic() - started < timeout_s:
        time.sleep(1.0)
        s = prober.sample()
        dt = max(s.t - previous.t, 1e-9)
        # small = under the floor or under one second of the stage's input (a sink at 1,500 ev/s
        # always has ~1,000 messages in its current batch)
        small = all(
            lag <= max(FLOOR_MSGS, (s.group_end.get(g, 0) - previous.group_end.get(g, 0)) / dt)
            for g, lag in s.group_lag.items()
        )
        if small and s.venue_trades - s.md_trades <= FLOOR_MSGS and s.ws_queued <= FLOOR_MSGS:
            return time.monotonic() - started
        previous = s
    return None


# ----------------------------------------------------------------------------------- latency


@dataclass(frozen=True)
class Latencies:
    """Per-signal latencies (ms) of the signals emitted in the latency window."""

    signals: int
    denied: int  # by the executor's risk checks
    stale: int  # expired before the executor got them (signal TTL after the input's receive time) -> dlq
    tick_to_signal: list[float]
    signal_to_order: list[float]
    tick_to_order: list[float]
    venue_event_to_order: list[float]
    tick_to_venue_answer: list[float]
    hops: dict[str, list[float]]  # the hop stamps of each signal's first answered order, hop by hop


# hop name -> (record holding the later stamp, later stamp, record holding the earlier stamp, earlier stamp)
HOPS: tuple[tuple[str, str, str, str, str], ...] = (
    ("venue event -> feed receive", "signal", "ts_recv", "signal", "ts_event"),
    ("feed receive -> Kafka ack of the md record", "signal", "ts_md_ack", "signal", "ts_recv"),
    ("Kafka ack -> streams input", "signal", "ts_in", "signal", "ts_md_ack"),
    ("streams input -> signal emitted", "signal", "ts_emit", "signal", "ts_in"),
    ("signal emitted -> Kafka ack of the signal", "order", "ts_signal_ack", "signal", "ts_emit"),
    ("Kafka ack -> executor input", "order", "ts_in", "order", "ts_signal_ack"),
    ("executor input -> order sent", "order", "ts_sent", "order", "ts_in"),
    ("order sent -> venue ack (venue clock)", "order", "ts_event", "order", "ts_sent"),
    ("order sent -> answer received", "order", "ts_recv", "order", "ts_sent"),
    ("**tick -> signal**", "signal", "ts_emit", "signal", "ts_recv"),
    ("**tick -> order sent**", "order", "ts_sent", "signal", "ts_recv"),
)


def hop_latencies(signals: list[dict], first_answer: dict[str, dict]) -> dict[str, list[float]]:
    """Per hop, the ms between the stamps the records carry (ms-resolution stamps may read up to 1 ms off)."""
    hops: dict[str, list[float]] = {name: [] for name, *_ in HOPS}
    for signal in signals:
        order = first_answer.get(signal["signal_id"])
        if order is None:
            continue
        records = {"signal": signal, "order": order}
        for name, later_rec, later, earlier_rec, earlier in HOPS:
            a, b = records[later_rec].get(later), records[earlier_rec].get(earlier)
            if a is not None and b is not None:
                hops[name].append((a - b) / 1e6)
    return hops


def _values(bootstrap: str, topic: Topic) -> list[bytes]:
    """Every value in ``topic`` from its beginning to its end at the call."""
    return [msg.value() for msg in read_to_end(bootstrap, topic.value)]


def collect_latencies(bootstrap: str, window_ns: tuple[int, int]) -> Latencies:
    """Join the window's signals with the executor's order events by signal id."""
    serde = AvroSerde()
    signals = [serde.decode_as("Signal", v) for v in _values(bootstrap, Topic.SIGNALS)]
    # by input receive time: ticks that arrived in the window, not signals a backlog emitted then
    signals = [s for s in signals if window_ns[0] <= s["ts_recv"] <= window_ns[1]]
    sent: dict[str, int] = {}
    denied: set[str] = set()
    answered: dict[str, int] = {}
    first_answer: dict[str, dict] = {}
    for value in _values(bootstrap, Topic.ORDERS):
        o = serde.decode_as("OrderEvent", value)
        sid = o["signal_id"]
        if o["status"] == "pending_new":
            sent[sid] = min(sent.get(sid, o["ts_emit"]), o["ts_emit"])
        elif o["status"] == "denied":
            denied.add(sid)
        elif o["previous_status"] == "pending_new":
            answered[sid] = min(answered.get(sid, o["ts_emit"]), o["ts_emit"])
            if sid not in first_answer or (o["ts_sent"] or 0) < (first_answer[sid]["ts_sent"] or 0):
                first_answer[sid] = o
    stale = set()
    for value in _values(bootstrap, Topic.DLQ):
        dead = serde.decode_as("DeadLetter", value)
        if dead["source_topic"] == Topic.SIGNALS.value and dead["error"].startswith("stale"):
            stale.add(serde.decode_as("Signal", dead["raw"])["signal_id"])
    ms = 1e-6
    with_order = [s for s in signals if s["signal_id"] in sent]
    return Latencies(
        signals=len(signals),
        denied=sum(1 for s in signals if s["signal_id"] in denied and s["signal_id"] not in sent),
        stale=sum(1 for s in signals if s["signal_id"] in stale),
        tick_to_signal=[(s["ts_emit"] - s["ts_recv"]) * ms for s in signals],
        signal_to_order=[(sent[s["signal_id"]] - s["ts_emit"]) * ms for s in with_order],
        tick_to_order=[(sent[s["signal_id"]] - s["ts_recv"]) * ms for s in with_order],
        venue_event_to_order=[(sent[s["signal_id"]] - s["ts_event"]) * ms for s in with_order],
        tick_to_venue_answer=[
            (answered[s["signal_id"]] - s["ts_recv"]) * ms for s in with_order if s["signal_id"] in answered
        ],
        hops=hop_latencies(signals, first_answer),
    )


# ----------------------------------------------------------------------------------- report


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores ({cpu}), {mem_kb / 2**20:.0f} GiB RAM, Python {platform.python_version()}, "
            f"load average {load} (shared with other engineers' work)")


def _verdict(r: StepResult) -> str:
    if r.restarted():
        return f"{', '.join(r.restarted())} restarted"
    return "sustained" if r.sustained else "lag grows"


def print_steps_table(steps: list[StepResult]) -> None:
    stages = [v.stage for v in steps[0].verdicts] if steps else []
    header = ["target ev/s", "achieved ev/s", "md.trades/s", *(f"{st} lag (growth/s)" for st in stages),
              "busiest: cpu/waited for a core (% of one)", "stack cpu", "machine busy", "verdict"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in steps:
        by_stage = {v.stage: v for v in r.verdicts}
        cells = [f"{by_stage[st].final_lag:,} ({by_stage[st].growth_per_s:+,.0f})" if st in by_stage else "-"
                 for st in stages]
        cpu = sorted(r.cpu_percent().items(), key=lambda kv: -kv[1])[:3]
        wait = r.runq_wait_percent()
        print(f"| {r.target:,.0f} | {r.achieved:,.0f} | {r.per_s(lambda s: s.md_trades):,.0f} | " + " | ".join(cells)
              + f" | {', '.join(f'{k} {v:.0f}/{wait.get(k, 0):.0f}%' for k, v in cpu)} | {r.stack_percent():.0f}% | "
              f"{r.machine_busy_percent():.0f}% | {_verdict(r)} |")


def print_latency(lat: Latencies, rate: float, seconds: float) -> None:
    print(f"\ntick-to-order at {rate:,.0f} events/s for {seconds:.0f} s: {lat.signals} signals, "
          f"{len(lat.tick_to_order)} with an order sent, {lat.denied} denied by risk, "
          f"{lat.stale} stale on arrival at the executor (dlq), "
          f"{lat.signals - len(lat.tick_to_order) - lat.denied - lat.stale} finished or still working without an order")
    print("| hop | n | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for name, values in (
        ("md ts_recv -> signal ts_emit", lat.tick_to_signal),
        ("signal ts_emit -> order sent", lat.signal_to_order),
        ("**md ts_recv -> order sent (tick-to-order)**", lat.tick_to_order),
        ("venue ts_event -> order sent", lat.venue_event_to_order),
        ("md ts_recv -> venue answer", lat.tick_to_venue_answer),
    ):
        if values:
            print(f"| {name} | {len(values)} | {percentile(values, 0.5):.1f} | {percentile(values, 0.99):.1f} | "
                  f"{max(values):.1f} |")
        else:
            print(f"| {name} | 0 | - | - | - |")
    print("\nhop by hop, from the stamps the records carry (each signal's first order the venue answered):")
    print("| hop | n | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for name, values in lat.hops.items():
        if values:
            print(f"| {name} | {len(values)} | {percentile(values, 0.5):.2f} | {percentile(values, 0.99):.2f} | "
                  f"{max(values):.2f} |")
        else:
            print(f"| {name} | 0 | - | - | - |")


# ----------------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="200,500,1000,2000,3000,4000,6000",
                        help="comma-separated background event rates (events/s), stepped up in order")
    parser.add_argument("--step-s", type=float, default=25.0, help="how long each rate is held")
    parser.add_argument("--settle-s", type=float, default=8.0,
                        help="start of each step not judged (the previous backlog drains there)")
    parser.add_argument("--sample-s", type=float, default=2.5, help="lag sampling interval")
    parser.add_argument("--latency-s", type=float, default=50.0, help="how long signals are collected at half rate")
    parser.add_argument("--latency-rate", type=float, default=0.0,
                        help="event rate of the latency phase (default: half the highest sustained rate)")
    parser.add_argument("--drain-s", type=float, default=30.0, help="longest wait for backlogs to drain before it")
    parser.add_argument("--all-steps", action="store_true", help="keep stepping after a step is not sustained")
    parser.add_argument("--signal-cooldown-ms", type=int, default=1000,
                        help="streams signal cooldown per instrument (default 5000 gives too few signals to rank)")
    parser.add_argument("--setting", action="append", default=[], metavar="TICKPIPE_NAME=VALUE",
                        help="one more setting for every service of the stack (e.g. TICKPIPE_GC_FREEZE=false); repeatable")
    parser.add_argument("--signal-target-qty", default="0.01",
                        help="signal target quantity in base units (tradable on every symbol at its start price)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    print(f"machine: {machine()}", flush=True)
    overrides = {
        "TICKPIPE_SIM__EVENTS_PER_S": str(rates[0]),
        # one venue's feed: the feed lag compares md.trades with the exchange's own trade count, which the
        # Kraken and Coinbase feeds of the same simulated exchange would publish again
        "TICKPIPE_STACK__SERVICES": "broker,warehouse,sim-exchange,feed,streams,sink,executor",
        # with one venue the cross-venue agents have nothing to consolidate, yet would decode every BBO
        "TICKPIPE_STREAMS__CROSS_VENUE": "false",
        "TICKPIPE_STREAMS__SIGNAL_COOLDOWN_MS": str(args.signal_cooldown_ms),
        # the executor should meet the venue's order limit only if the pipeline is that fast
        "TICKPIPE_SIM__ORDERS_LIMIT_10S": "1000",
        # the default 0.001 is below ETHUSDT's 5 USDT minimum notional at ~3,000: the executor waits
        # on such a signal until it expires, never sending an order (BTCUSDT only would halve n)
        "TICKPIPE_STREAMS__SIGNAL_TARGET_QTY": args.signal_target_qty,
    }
    for item in args.setting:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("TICKPIPE_"):
            raise SystemExit(f"--setting {item!r}: expected TICKPIPE_NAME=VALUE")
        overrides[name] = value
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp, local_stack(Path(tmp), overrides) as stack:
        prober = Prober(stack)
        steps: list[StepResult] = []
        for rate in rates:
            print(f"step {len(steps) + 1}/{len(rates)}: {rate:,.0f} events/s for {args.step_s:.0f} s", flush=True)
            steps.append(run_step(prober, rate, args.step_s, args.sample_s, args.settle_s))
            print_step(steps[-1])
            if not steps[-1].sustained and not args.all_steps:
                break
        sustained = [r for r in steps if r.sustained]
        best = max(sustained, key=lambda r: r.target) if sustained else None
        print("\nrate steps (lag at the end of the step; growth = least-squares slope after the settle time):")
        print_steps_table(steps)
        if best is None:
            print("no step was sustained; latency measured at half the lowest rate")
        half = args.latency_rate or (best.target if best else rates[0]) / 2
        print(f"\nhighest sustained: {best.target:,.0f} events/s (achieved {best.achieved:,.0f})" if best else "")
        print(f"latency phase: {half:,.0f} events/s; draining backlogs", flush=True)
        prober.set_rate(half)
        drained = wait_drained(prober, args.drain_s)
        if drained is None:
            print(f"  WARNING: backlogs not drained after {args.drain_s:.0f} s; the latencies include them", flush=True)
        else:
            print(f"  drained in {drained:.1f} s", flush=True)
        print(f"  collecting the signals of the ticks received in the next {args.latency_s:.0f} s", flush=True)
        window_start = time.time_ns()
        latency_step = run_step(prober, half, args.latency_s, max(args.sample_s, 5.0), 0.0)
        window_end = time.time_ns()
        print_step(latency_step)
        time.sleep(5.0)  # signals and orders of the window's last ticks
        lat = collect_latencies(stack.record.bootstrap, (window_start, window_end))
        print(f"\nmachine: {machine()}")
        print("rate steps:")
        print_steps_table(steps)
        if best:
            print(f"\nhighest sustained rate: {best.target:,.0f} events/s target, {best.achieved:,.0f} achieved")
        print_latency(lat, half, args.latency_s)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted; the stack was stopped", file=sys.stderr)
        sys.exit(130)
