"""Live against backtest: the whole stack trades the simulated exchange for a few minutes, then the same
window is backtested from the archive; signals must match, the fills' difference is measured and stated."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from infra.stack import SERVICES
from tests.e2e.pipeline_checks import Pipeline
from tests.stack_harness import running_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ALL = ",".join(s.name for s in SERVICES)
LIVE_S = 150
MD = ("v_md_book", "v_md_bbo", "v_md_trades", "v_md_health")


def _signals(pipe: Pipeline, backtest_id: str, start: int, end: int) -> dict[str, tuple]:
    rows = pipe.rows(
        "SELECT signal_id, side, strength, urgency, toString(reference_price), inputs, toUnixTimestamp64Nano(ts_recv) "
        f"FROM v_signals WHERE backtest_id = '{backtest_id}' AND venue = 'binance' "
        f"AND ts_recv >= fromUnixTimestamp64Nano({start}) AND ts_recv < fromUnixTimestamp64Nano({end})")
    return {r[0]: r[1:] for r in rows}


def _fills(pipe: Pipeline, backtest_id: str, ids: set[str]) -> tuple[int, Decimal, Decimal]:
    rows = pipe.rows(f"SELECT signal_id, qty, liquidity FROM fills_unique WHERE backtest_id = '{backtest_id}' "
                     "AND venue = 'binance'")
    mine = [r for r in rows if r[0] in ids]
    return (len(mine), sum((r[1] for r in mine), Decimal(0)),
            sum((r[1] for r in mine if r[2] == "maker"), Decimal(0)))


@pytest.mark.timeout(900)
def test_a_backtest_of_a_live_window_emits_the_live_signals_and_states_its_fill_difference(tmp_path: Path) -> None:
    # Arrange: the whole stack live for a few minutes, then the venue paused and the archive drained
    with running_stack(tmp_path, ALL, TICKPIPE_SIM__EVENTS_PER_S="300") as stack:
        url = stack.record.warehouse_url
        pipe = Pipeline(url, stack.service("sim-exchange").url)
        time.sleep(LIVE_S)
        pipe.pause_flow()
        for symbol in pipe.symbols:
            pipe.wait_archived(symbol, pipe.sim_trades(symbol)[-1]["id"])
        time.sleep(10)  # orders in flight settle; fills and order events reach the archive
        bounds = [pipe.rows(f"SELECT toUnixTimestamp64Nano(min(ts_recv)), toUnixTimestamp64Nano(max(ts_recv)) FROM {t}")[0]
                  for t in MD]
        start, end = min(b[0] for b in bounds), max(b[1] for b in bounds) + 1

        # Act
        run = stack.tickpipe("backtest", "--from", str(start), "--to", str(end), "--backtest-id", "bt-live",
                             "--url", url, timeout=600)
        report = stack.tickpipe("report", "compare", "--backtest-id", "bt-live", "--from", str(start),
                                "--to", str(end), "--url", url, "--csv", str(tmp_path / "compare.csv"))
        live, test = _signals(pipe, "", start, end), _signals(pipe, "bt-live", start, end)
        live_fills, test_fills = _fills(pipe, "", set(live)), _fills(pipe, "bt-live", set(test))

    # Assert: the same inputs give the same signals (ids and content); the fills are only measured
    assert run.returncode == 0, run.stdout + run.stderr
    assert report.returncode == 0, report.stdout + report.stderr
    print(run.stdout, report.stdout, sep="\n")
    print(f"fills live {live_fills} vs backtest {test_fills} (count, qty, maker qty)")
    assert live, "the live stack emitted no binance signal in the window"
    assert set(test) == set(live)
    assert all(test[i][:5] == live[i][:5] for i in live)  # side, strength, urgency, reference price, inputs
    lines = {line.split()[0]: line.split()[1:] for line in report.stdout.splitlines()[1:]}
    assert lines["signals"] == [str(len(live)), str(len(test))]
    assert lines["fills"] == [str(live_fills[0]), str(test_fills[0])]
    assert test_fills[0] > 0
