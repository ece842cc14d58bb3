"""The backtest's archive reader and latency calibration against a real archive (the session's warehouse)."""

from __future__ import annotations

from typing import Any

import pytest

from backtest.latency import QUANTILES, LatencyModel, calibrate
from backtest.replay import ArchiveReplay
from tests.integration.sinks.conftest import Archive
from tests.integration.sinks.known_data import write_history

S = 1_000_000_000
T0 = 1_790_000_000 * S
BTC = {"venue": "binance", "symbol": "BTCUSDT"}
ETH = {"venue": "binance", "symbol": "ETHUSDT"}


def _bbo(base: dict[str, str], uid: int, at: int) -> dict[str, Any]:
    return {**base, "update_id": uid, "bid_price": "100.10", "bid_qty": "1", "ask_price": "100.20", "ask_qty": "2",
            "ts_event": at - 1000, "ts_recv": at}


def _trade(base: dict[str, str], tid: int, at: int) -> dict[str, Any]:
    return {**base, "trade_id": tid, "price": "100.15000000", "qty": "0.5", "side": "buy", "ts_event": at - 1000,
            "ts_recv": at}


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_replay_merges_topics_by_receive_time_keeps_each_partition_in_offset_order_and_filters_instruments(
        archive: Archive) -> None:
    # Arrange: bbo offsets 0..3 with a receive time that goes back at offset 2 (a partition's order stands);
    # a trade between them; an ETH bbo filtered out; a connection-wide health event kept; one record past the end
    bbo = [_bbo(BTC, 1, T0 + 10), _bbo(BTC, 2, T0 + 30), _bbo(BTC, 3, T0 + 20), _bbo(BTC, 4, T0 + 2 * S),
           _bbo(ETH, 5, T0 + 15)]
    trades = [_trade(BTC, 7, T0 + 25), _trade(BTC, 8, T0 + 3 * S)]
    health = [{**BTC, "symbol": "", "event_id": "c-1", "kind": "connect", "connection_id": "c", "detail": "open",
               "first_update_id": None, "last_update_id": None, "count": 0, "ts_event": T0 + 30, "ts_recv": T0 + 30}]
    book = [{**BTC, "snapshot": True, "first_update_id": 9, "last_update_id": 9,
             "bids": [{"price": "100.1", "qty": "1.5"}], "asks": [{"price": "100.2", "qty": "2"}],
             "ts_event": T0, "ts_recv": T0 + 5}]
    write_history(archive.client, {"md.bbo": bbo, "md.trades": trades, "md.health": health, "md.book": book})

    # Act: chunks of 1 s, window [T0, T0 + 3 s)
    replay = ArchiveReplay(archive.client, T0, T0 + 3 * S, ["binance:BTCUSDT"], chunk_ns=S)
    events = list(replay)

    # Assert
    assert [(e.topic, e.offset) for e in events] == [
        ("md.book", 0), ("md.bbo", 0), ("md.trades", 0), ("md.health", 0), ("md.bbo", 1), ("md.bbo", 2),
        ("md.bbo", 3)]
    assert replay.count() == len(events)
    assert events[0].record["bids"] == [{"price": "100.1", "qty": "1.5"}] and events[0].record["snapshot"] is True
    assert events[2].record == {**_trade(BTC, 7, T0 + 25), "price": "100.15"}  # exact, trailing zeros dropped
    assert events[1].record == {**_bbo(BTC, 1, T0 + 10), "bid_price": "100.1", "ask_price": "100.2"}


def _signal(k: int, emit: int, recv: int, backtest_id: str = "") -> dict[str, Any]:
    return {**BTC, "signal_id": f"s{k}", "side": "buy", "strength": 0.5, "target": "0.01", "urgency": 0.5,
            "model": "m", "expires_at": recv + S, "reference_price": "100", "inputs": [], "ts_event": recv,
            "ts_recv": recv, "ts_emit": emit, "ts_md_ack": None, "ts_in": None, "backtest_id": backtest_id}


def _order(k: int, emit: int, sent: int, answered: int, backtest_id: str = "") -> dict[str, Any]:
    return {**BTC, "client_order_id": f"s{k}-0", "seq": 0, "signal_id": f"s{k}", "side": "buy",
            "order_type": "LIMIT_MAKER", "time_in_force": None, "price": "100", "qty": "0.01", "status": "new",
            "previous_status": "pending_new", "filled_qty": "0", "avg_price": None, "venue_order_id": "1",
            "reason": None, "error_code": None, "ts_event": answered, "ts_recv": answered, "ts_emit": emit,
            "ts_signal_ack": None, "ts_in": None, "ts_sent": sent, "backtest_id": backtest_id}


def _exact_quantiles(values: list[int]) -> tuple[int, ...]:
    # ClickHouse's quantileExact: the element at floor(level * n) of the sorted values
    ordered = sorted(values)
    return tuple(ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in QUANTILES)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_latency_is_calibrated_from_the_live_records_only_and_draws_repeat_with_the_seed(archive: Archive) -> None:
    # Arrange: 40 live signals and orders with known hops; one backtest signal and order with absurd ones
    signals, orders = [], []
    tick, to_order, trip = [], [], []
    for k in range(40):
        recv = T0 + k * S
        emit = recv + 1_000_000 + k * 37_000
        placed = emit + 500_000 + (k % 7) * 91_000
        answered = placed + 800_000 + (k % 5) * 200_000
        signals.append(_signal(k, emit, recv))
        orders.append(_order(k, placed, placed, answered))
        tick.append(emit - recv)
        to_order.append(placed - emit)
        trip.append((answered - placed) // 2)
    signals.append(_signal(99, T0 + 60 * S, T0, "bt1"))
    orders.append(_order(99, T0 + 90 * S, T0 + 90 * S, T0 + 99 * S, "bt1"))
    write_history(archive.client, {"signals": signals, "orders": orders})
    defaults = {"tick_to_signal": 1, "signal_to_order": 2, "venue_one_way": 3}

    # Act
    hops = calibrate(archive.client, defaults)
    draws = [LatencyModel(hops, seed=11).draw("tick_to_signal") for _ in range(2)]
    model = LatencyModel(hops, seed=11)
    sequence = [model.draw(h) for h in ("tick_to_signal", "signal_to_order", "venue_one_way") * 50]
    again = LatencyModel(hops, seed=11)

    # Assert
    assert hops["tick_to_signal"].quantiles == _exact_quantiles(tick) and hops["tick_to_signal"].samples == 40
    assert hops["signal_to_order"].quantiles == _exact_quantiles(to_order)
    assert hops["venue_one_way"].quantiles == _exact_quantiles(trip)
    assert draws[0] == draws[1]
    assert sequence == [again.draw(h) for h in ("tick_to_signal", "signal_to_order", "venue_one_way") * 50]
    assert all(min(tick) <= v <= max(tick) for v in sequence[0::3])
    assert all(min(trip) <= v <= max(trip) for v in sequence[2::3])


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_latency_falls_back_to_the_settings_constants_on_an_archive_without_live_orders(archive: Archive) -> None:
    # Act
    hops = calibrate(archive.client, {"tick_to_signal": 5_000_000, "signal_to_order": 2_000_000,
                                      "venue_one_way": 1_000_000})

    # Assert
    model = LatencyModel(hops, seed=1)
    assert [model.draw("tick_to_signal") for _ in range(3)] == [5_000_000] * 3
    assert model.draw("venue_one_way") == 1_000_000 and hops["venue_one_way"].samples == 0
