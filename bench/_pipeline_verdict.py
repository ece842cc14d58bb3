"""Pure figures of the pipeline benchmark: is a consumer's lag bounded over a step, percentiles.

Kept apart from ``bench/pipeline.py`` (all I/O) so that the verdict rule is unit-tested
(``tests/unit/bench``). The leading underscore keeps ``tickpipe bench`` from running it as a script.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LagSeries:
    """One stage's backlog sampled over a step: (seconds since step start, lag in messages)."""

    stage: str
    points: tuple[tuple[float, int], ...]
    input_per_s: float  # messages/s arriving for this stage during the step


@dataclass(frozen=True)
class LagVerdict:
    """Whether a stage kept up: its lag neither trended up nor sat more than a few seconds behind."""

    stage: str
    bounded: bool
    final_lag: int
    growth_per_s: float  # least-squares slope of lag over the judged part of the step
    behind_s: float  # median lag of the judged part, in seconds of this stage's input


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x; 0 for fewer than two distinct x."""
    if len(points) < 2:
        return 0.0
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def judge(
    series: LagSeries, settle_s: float, max_behind_s: float, max_growth_frac: float, floor_msgs: int
) -> LagVerdict:
    """Judge one stage over one step.

    Samples before ``settle_s`` are ignored (the backlog of the previous rate drains there). The
    lag is bounded when, over the rest, it grows by less than ``max_growth_frac`` of the stage's
    input rate and its median or its last value is within ``max_behind_s`` seconds of input (or
    ``floor_msgs`` messages, for stages with little traffic: commit intervals alone leave that
    much uncommitted). The median because a batching consumer's lag saws up and down by a batch;
    the last value because a backlog still draining from the previous step ends low. An
    overloaded stage fails both tests: its lag grows at (input - capacity) per second.
    """
    judged = [(t, float(lag)) for t, lag in series.points if t >= settle_s] or [
        (t, float(lag)) for t, lag in series.points
    ]
    if not judged:
        return LagVerdict(series.stage, True, 0, 0.0, 0.0)
    level = statistics.median(lag for _, lag in judged)
    growth = slope(judged)
    span = max(judged[-1][0] - judged[0][0], 1.0)
    allowed_level = max(floor_msgs, max_behind_s * series.input_per_s)
    allowed_growth = max(floor_msgs / span, max_growth_frac * series.input_per_s)
    bounded = min(level, judged[-1][1]) <= allowed_level and growth <= allowed_growth
    behind = level / series.input_per_s if series.input_per_s > 0 else 0.0
    return LagVerdict(series.stage, bounded, int(judged[-1][1]), growth, behind)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method (an observed value, no interpolation)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]
