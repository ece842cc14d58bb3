"""`tickpipe backtest` end to end on a recorded market: determinism, and what the simulated fills may be."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backtest.driver import run_backtest
from infra.settings import Settings, environ_without_settings
from streams.models import DEFAULT_MODEL
from tests.integration.sinks.conftest import Archive
from tests.integration.sinks.known_data import write_history

TICKPIPE = str(Path(sys.executable).parent / "tickpipe")
RESULT_COLUMNS = {
    "signals": "* EXCEPT (backtest_id, _topic_id, _ingested_at)",
    "orders": "* EXCEPT (backtest_id, _topic_id, _ingested_at)",
    "fills": "* EXCEPT (backtest_id, _topic_id, _ingested_at)",
}


def _window(history: dict[str, list[dict[str, Any]]]) -> tuple[int, int]:
    times = [r["ts_recv"] for topic in ("md.book", "md.bbo", "md.trades") for r in history[topic]]
    return min(times), max(times) + 1


def live_latencies(at: int) -> dict[str, list[dict[str, Any]]]:
    """Live signals and orders elsewhere in the archive whose hops spread (1-9 ms), to calibrate on."""
    signals, orders = [], []
    for k in range(50):
        recv = at + k * 1_000_000_000
        emit = recv + 1_000_000 + (k * 7919 % 50) * 160_000
        sent = emit + 500_000 + (k * 104_729 % 50) * 100_000
        base = {"venue": "binance", "symbol": "BTCUSDT", "signal_id": f"live-{k}", "side": "buy", "ts_emit": emit}
        signals.append({**base, "strength": 0.5, "target": "0.01", "urgency": 0.5, "model": "m", "expires_at": recv,
                        "reference_price": "1", "inputs": [], "ts_event": recv, "ts_recv": recv, "ts_md_ack": None,
                        "ts_in": None})
        orders.append({**base, "client_order_id": f"live-{k}-0", "seq": 0, "order_type": "LIMIT_MAKER",
                       "time_in_force": None, "price": "1", "qty": "0.01", "status": "new",
                       "previous_status": "pending_new", "filled_qty": "0", "avg_price": None, "venue_order_id": "1",
                       "reason": None, "error_code": None, "ts_event": sent + 2_000_000, "ts_recv": sent + 4_000_000,
                       "ts_emit": sent, "ts_signal_ack": None, "ts_in": None, "ts_sent": sent})
    return {"signals": signals, "orders": orders}


def _results(archive: Archive, backtest_id: str) -> dict[str, list[tuple[Any, ...]]]:
    return {table: archive.client.query(
        f"SELECT {columns} FROM {table} FINAL WHERE backtest_id = {{b:String}} ORDER BY _offset",
        parameters={"b": backtest_id}).result_rows for table, columns in RESULT_COLUMNS.items()}


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_the_same_archive_window_settings_and_seed_give_identical_signals_orders_and_fills(
        archive: Archive, recorded_market: dict[str, list[dict[str, Any]]]) -> None:
    # Arrange
    start, end = _window(recorded_market)
    write_history(archive.client, {**recorded_market, **live_latencies(start - 3600 * 1_000_000_000)})
    settings = Settings()

    # Act
    for backtest_id, seed in (("bt-a", 7), ("bt-b", 7), ("bt-c", 8)):
        run_backtest(archive.client, settings, backtest_id, start, end, [], DEFAULT_MODEL, seed)
    a, b, c = (_results(archive, x) for x in ("bt-a", "bt-b", "bt-c"))

    # Assert: something happened, identically; another seed moves the stamps, not which signals fire
    assert len(a["signals"]) > 0 and len(a["orders"]) > 0
    assert a == b
    assert [s[0] for s in c["signals"]] == [s[0] for s in a["signals"]]
    assert a != c


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_passive_fills_come_from_archived_trades_reaching_the_order_and_aggressive_ones_stay_within_the_limit(
        archive: Archive, recorded_market: dict[str, list[dict[str, Any]]]) -> None:
    # Arrange
    write_history(archive.client, recorded_market)
    start, end = _window(recorded_market)
    run_backtest(archive.client, Settings(), "bt-f", start, end, [], DEFAULT_MODEL, 7)
    orders = {r[0]: r[1:] for r in archive.client.query(
        "SELECT client_order_id, symbol, side, price, qty, min(ts_event) FROM orders FINAL WHERE backtest_id = 'bt-f' "
        "GROUP BY client_order_id, symbol, side, price, qty").result_rows}
    fills = archive.client.query(
        "SELECT client_order_id, liquidity, price, qty, toUnixTimestamp64Nano(ts_event) FROM fills FINAL "
        "WHERE backtest_id = 'bt-f' ORDER BY _offset").result_rows
    trades = recorded_market["md.trades"]

    # Act: per passive order, the archived volume that could reach it (opposite aggressor, at or through
    # its price, traded after the order existed and up to its fill)
    maker: dict[str, Decimal] = {}
    reachable: dict[str, Decimal] = {}
    for cid, liquidity, price, qty, at in fills:
        symbol, side, limit, order_qty, created = orders[cid]
        assert qty <= order_qty
        if liquidity == "taker":
            assert (price <= limit) if side == "buy" else (price >= limit)
            continue
        assert price == limit  # a passive order fills at its own price
        maker[cid] = maker.get(cid, Decimal(0)) + qty
        against = "sell" if side == "buy" else "buy"
        reachable[cid] = sum((Decimal(tr["qty"]) for tr in trades
                              if tr["symbol"] == symbol and tr["side"] == against
                              and created.timestamp() * 1e9 - 1e6 <= tr["ts_event"] <= at + 1_000_000
                              and (Decimal(tr["price"]) <= limit if side == "buy" else Decimal(tr["price"]) >= limit)),
                             Decimal(0))

    # Assert
    assert maker  # the queue rule was exercised (IOC sweeps: tests/unit/backtest/test_venue.py)
    assert all(maker[cid] <= reachable[cid] for cid in maker), (maker, reachable)


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_the_backtest_command_reports_its_figures_writes_under_its_id_and_the_execution_report_reads_it(
        archive: Archive, recorded_market: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    # Arrange
    write_history(archive.client, recorded_market)
    start, end = _window(recorded_market)
    env = {**environ_without_settings(), "TICKPIPE_WAREHOUSE__URL": archive.warehouse.url,
           "TICKPIPE_WAREHOUSE__DATABASE": archive.warehouse.database}

    # Act
    done = subprocess.run([TICKPIPE, "backtest", "--from", str(start), "--to", str(end), "--symbols", "BTCUSDT",
                           "--backtest-id", "bt-cli"], check=False, env=env, capture_output=True, text=True, timeout=300)

    # Assert
    assert done.returncode == 0, done.stderr
    signals = archive.scalar("SELECT count() FROM signals FINAL WHERE backtest_id = 'bt-cli'")
    symbols = archive.client.query("SELECT DISTINCT symbol FROM orders FINAL WHERE backtest_id = 'bt-cli'").result_rows
    assert signals > 0 and symbols == [("BTCUSDT",)]
    assert f"signals {signals} " in done.stdout and "backtest_id bt-cli" in done.stdout
    assert "latency venue_one_way: p50 1.000 ms" in done.stdout  # the settings' 2 ms round trip: no live orders here
    refused = subprocess.run([TICKPIPE, "backtest", "--from", str(start), "--to", str(end), "--symbols", "NOPE"],
                             check=False, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "NOPE" in refused.stderr
    report = subprocess.run([TICKPIPE, "report", "execution", "--backtest-id", "bt-cli", "--out", str(tmp_path / "bt.png"),
                             "--csv", str(tmp_path / "bt.csv")], check=False, env=env, capture_output=True, text=True,
                            timeout=120)
    orders = archive.scalar("SELECT uniqExact(client_order_id) FROM orders FINAL WHERE backtest_id = 'bt-cli'")
    assert report.returncode == 0, report.stderr
    assert f"{orders} order(s)" in report.stdout  # the run's orders, whole, though its times are not today's


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_a_window_starting_mid_archive_rebuilds_the_books_from_their_snapshot_and_emits_the_whole_runs_signals(
        archive: Archive, recorded_market: dict[str, list[dict[str, Any]]]) -> None:
    # Arrange: the archive's only snapshots are at its start; a window from its middle has none of its own
    write_history(archive.client, recorded_market)
    start, end = _window(recorded_market)
    middle = (start + end) // 2
    assert not any(r["snapshot"] for r in recorded_market["md.book"] if r["ts_recv"] >= middle)
    run_backtest(archive.client, Settings(), "bt-whole", start, end, [], DEFAULT_MODEL, 7)

    # Act
    summary, _ = run_backtest(archive.client, Settings(), "bt-half", middle, end, [], DEFAULT_MODEL, 7)

    # Assert: the signals of the whole run whose input came in the window's half, no more, no fewer
    def ids(backtest_id: str) -> list[str]:
        return [r[0] for r in archive.client.query(
            "SELECT signal_id FROM signals FINAL WHERE backtest_id = {b:String} "
            "AND ts_recv >= fromUnixTimestamp64Nano({m:Int64}) ORDER BY _offset",
            parameters={"b": backtest_id, "m": middle}).result_rows]

    half = ids("bt-half")
    assert half and half == ids("bt-whole")
    assert summary.signals == len(half) and summary.warmup_events > 0
