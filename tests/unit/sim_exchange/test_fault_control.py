"""Armed faults: which REST calls they take, how often, and what clearing undoes (no sockets needed)."""

from __future__ import annotations

import random
import time

from infra.settings import SimExchangeSettings
from sim_exchange.engine import Engine
from sim_exchange.fault_control import FaultControl
from sim_exchange.faults import LateExecution, RestError
from sim_exchange.flow import BackgroundFlow
from sim_exchange.market_streams import MarketStreams
from sim_exchange.symbols import make_spec


def _control(now_ms: list[int] | None = None) -> tuple[FaultControl, BackgroundFlow]:
    specs = {s: make_spec(s) for s in ("BTCUSDT", "ETHUSDT")}
    clock = (lambda: now_ms[0]) if now_ms else (lambda: 0)
    engine = Engine(list(specs.values()), clock)
    flow = BackgroundFlow(engine, list(specs.values()), seed=1)
    rng = random.Random(5)
    streams = MarketStreams(SimExchangeSettings(), specs, clock, rng)
    return FaultControl(streams, flow, clock, rng), flow


def test_a_rest_fault_takes_only_matching_calls_and_only_count_of_them() -> None:
    control, _ = _control()
    control.apply_faults({"rest_error": {"count": 2, "path": "/api/v3/order", "method": "POST"}})
    assert control.match_rest_fault("/api/v3/order", "GET") is None
    assert control.match_rest_fault("/api/v3/account", "POST") is None
    taken = [control.match_rest_fault("/api/v3/order", "POST") for _ in range(3)]
    assert taken[0] == taken[1] == RestError(count=2, path="/api/v3/order", method="POST") and taken[2] is None
    assert control.state(time.monotonic())["rest_errors"] == []


def test_the_same_fault_applied_again_rearms_instead_of_stacking() -> None:
    control, _ = _control()
    for _ in range(3):
        control.apply_faults({"late_execution": {"count": 1}})
    assert isinstance(control.match_rest_fault("/api/v3/order", "POST"), LateExecution)
    assert control.match_rest_fault("/api/v3/order", "POST") is None


def test_mytrades_lag_hides_recent_executions_until_cleared() -> None:
    now_ms = [1_000_000]
    control, _ = _control(now_ms)
    assert control.trades_visible_until(time.monotonic()) is None
    control.apply_faults({"mytrades_lag": {"seconds": 60, "lag_s": 3}})
    assert control.trades_visible_until(time.monotonic()) == 1_000_000 - 3_000
    control.clear()
    assert control.trades_visible_until(time.monotonic()) is None


def test_a_429_storm_answers_every_call_at_probability_one_and_clearing_ends_it() -> None:
    control, _ = _control()
    control.apply_faults({"http_429": {"seconds": 60, "probability": 1.0, "retry_after_s": 2}})
    assert all(control.storm_hits(time.monotonic()) is not None for _ in range(20))
    assert control.storm_hits(time.monotonic() + 61) is None
    control.clear()
    assert control.storm_hits(time.monotonic()) is None


def test_a_withdrawal_ends_in_the_flow_when_its_time_is_up() -> None:
    control, flow = _control()
    withdrawn = lambda: {f.spec.symbol for f in flow.symbols if f.withdrawal is not None}
    control.apply_faults({"liquidity_withdrawal": {"symbol": "BTCUSDT", "seconds": 5}})
    assert withdrawn() == {"BTCUSDT"}
    control.end_withdrawals(time.monotonic())
    assert withdrawn() == {"BTCUSDT"}  # not yet
    control.end_withdrawals(time.monotonic() + 6)
    assert withdrawn() == set() and control.state(time.monotonic())["withdrawals"] == {}
