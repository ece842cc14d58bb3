"""End to end: the whole local stack live for about a minute, then every hop checked against the venue."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from infra.stack import SERVICES
from tests.e2e.pipeline_checks import (
    HOPS,
    Pipeline,
    bar_differences,
    fill_differences,
    order_problems,
    recorded_hops,
    trade_differences,
)
from tests.stack_harness import running_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ALL = ",".join(s.name for s in SERVICES)


def _wait_minute_closed(started: float, lateness_s: float) -> None:
    # Run until at least one whole wall-clock minute has passed since start, plus the bar lateness.
    first_boundary = (int(started) // 60 + 1) * 60
    until = first_boundary + 60 + lateness_s + 3
    while time.time() < until:
        time.sleep(1)


@pytest.mark.timeout(420)
def test_live_pipeline_archives_every_trade_once_builds_exact_bars_and_never_duplicates_an_order(
    tmp_path: Path,
) -> None:
    # Arrange: the whole stack on free ports, background flow at 300 events/s.
    with running_stack(tmp_path, ALL, TICKPIPE_SIM__EVENTS_PER_S="300") as stack:
        pipe = Pipeline(stack.record.warehouse_url, stack.service("sim-exchange").url)
        started = time.time()

        # Act: let it run across a full minute, then stop the venue's flow and let the pipeline drain.
        _wait_minute_closed(started, lateness_s=2.0)
        pipe.pause_flow()
        last_ids = {s: pipe.sim_trades(s)[-1]["id"] for s in pipe.symbols}
        for symbol, last_id in last_ids.items():
            pipe.wait_archived(symbol, last_id)
        time.sleep(8)  # orders in flight settle; fills and order events reach the archive

        trades = {s: trade_differences(pipe, s) for s in pipe.symbols}
        bars = {s: bar_differences(pipe, s) for s in pipe.symbols}
        orders = order_problems(pipe)
        fills = fill_differences(pipe)
        hops = recorded_hops(pipe)
        signals = pipe.rows("SELECT count() FROM v_signals")[0][0]
        order_count = pipe.rows("SELECT uniqExact(client_order_id) FROM v_orders")[0][0]

    # Assert
    for symbol, diff in trades.items():
        assert diff["checked"] > 1000, (symbol, diff["checked"])
        assert (diff["missing"], diff["duplicated"], diff["unknown"], diff["mismatched"]) == ([], [], [], []), symbol
    for symbol, (count, problems) in bars.items():
        assert count >= 1, f"{symbol}: no 1 m bar archived"
        assert problems == []
    assert signals > 0 and order_count > 0, (signals, order_count)
    assert orders == []
    assert fills == {"missing": [], "extra": [], "duplicated": []}
    assert HOPS <= hops, HOPS - hops
