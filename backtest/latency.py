"""The latency between the pipeline's stages, drawn from what the live pipeline measured in the archive.

Three hops separate a market record from the venue seeing our order (names as in ``sinks/views.sql``):

* ``tick_to_signal``: the feed received the input -> the streams worker emitted the signal
  (``hop_latency``: hop ``recv->emit``, source ``signals``);
* ``signal_to_order``: the signal was emitted -> the executor published the order it decided on
  (``hop_latency``: hop ``signal->order``; Kafka, the executor's intake and its decision);
* ``venue_one_way``: the order left -> the venue acted on it, taken as half the round trip
  (``order_latency.order_round_trip_ns``; our clock and the venue's differ by milliseconds, so the
  one-way leg is not measured directly).

Each hop is kept as its empirical quantiles (1 % steps) of the live records; a draw picks a uniform
quantile from a seeded generator and interpolates, so the same seed and the same calls give the same
latencies. A hop the archive has no live sample of falls back to a constant from the settings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

HOPS = ("tick_to_signal", "signal_to_order", "venue_one_way")
QUANTILES = tuple(i / 100 for i in range(101))
_LEVELS = ", ".join(str(q) for q in QUANTILES)
# hop_latency and order_latency hold live records only (backtest_id = '')
_SQL = {
    "tick_to_signal": f"SELECT count(), quantilesExact({_LEVELS})(latency_ns) FROM hop_latency "
                      "WHERE hop = 'recv->emit' AND source = 'signals'",
    "signal_to_order": f"SELECT count(), quantilesExact({_LEVELS})(latency_ns) FROM hop_latency "
                       "WHERE hop = 'signal->order'",
    "venue_one_way": f"SELECT count(), quantilesExact({_LEVELS})(intDiv(order_round_trip_ns, 2)) FROM order_latency",
}


@dataclass(frozen=True)
class Hop:
    """One hop's latency distribution: quantiles (ns) at :data:`QUANTILES`, and the samples behind them."""

    quantiles: tuple[int, ...]
    samples: int  # 0: a constant from the settings

    @classmethod
    def constant(cls, ns: int) -> Hop:
        """A hop that always takes ``ns``."""
        return cls((ns,) * len(QUANTILES), 0)

    def at(self, u: float) -> int:
        """The latency at quantile ``u`` in [0, 1), interpolated between the stored quantiles."""
        x = u * (len(self.quantiles) - 1)
        i = int(x)
        if i >= len(self.quantiles) - 1:
            return self.quantiles[-1]
        lo, hi = self.quantiles[i], self.quantiles[i + 1]
        return lo + round((hi - lo) * (x - i))


class LatencyModel:
    """Latency draws per hop from a seeded generator (one generator: the draw order fixes the values)."""

    def __init__(self, hops: dict[str, Hop], seed: int) -> None:
        missing = set(HOPS) - set(hops)
        if missing:
            raise ValueError(f"latency model lacks hops {sorted(missing)}")
        self.hops = hops
        self._rng = random.Random(seed)

    def draw(self, hop: str) -> int:
        """One latency (ns) of ``hop``."""
        return max(0, self.hops[hop].at(self._rng.random()))

    def describe(self) -> dict[str, str]:
        """Per hop: p50 / p99 in ms and where they come from (for the run's summary)."""
        return {name: f"p50 {h.quantiles[50] / 1e6:.3f} ms, p99 {h.quantiles[99] / 1e6:.3f} ms "
                      f"({f'{h.samples} live records' if h.samples else 'settings'})"
                for name, h in self.hops.items()}


def calibrate(client: Client, defaults_ns: dict[str, int]) -> dict[str, Hop]:
    """Each hop's distribution from the archive's live records, else ``defaults_ns[hop]`` as a constant."""
    hops = {}
    for name in HOPS:
        count, values = client.query(_SQL[name]).result_rows[0]
        hops[name] = Hop(tuple(int(v) for v in values), count) if count else Hop.constant(defaults_ns[name])
    return hops
