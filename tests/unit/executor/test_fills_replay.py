"""Start-up positions from the ``fills`` topic: this account's Fills only, once per trade, net of base fees;
and the ExecutorEvent records the executor publishes."""

from __future__ import annotations

import io
from collections import defaultdict
from decimal import Decimal
from typing import Any

import fastavro
from fastavro.schema import fingerprint as avro_fingerprint
from fastavro.schema import to_parsing_canonical_form
from hypothesis import given
from hypothesis import strategies as st

from executor.commands import Side
from executor.events import ExecutorEvents
from executor.positions import Positions
from executor.reconcile import BalanceCheck, FillsReplay
from schemas.registry import released_raw_schema
from schemas.serde import AvroSerde

D = Decimal
ASSETS = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT")}
ME = "acct-me"


def _fill(account: str, venue: str, symbol: str, trade_id: int, side: str, qty: str, fee: str, fee_asset: str,
          price: str = "100.5") -> dict[str, Any]:
    return {"venue": venue, "symbol": symbol, "trade_id": trade_id, "client_order_id": "tp-x-0-0",
            "venue_order_id": "1", "signal_id": "s", "side": side, "price": price, "qty": qty, "fee": fee,
            "fee_asset": fee_asset, "liquidity": "taker", "account": account, "ts_event": 1_000_000,
            "ts_recv": 2, "ts_emit": 3}


trades = st.dictionaries(
    keys=st.tuples(st.sampled_from([ME, "acct-other", ""]), st.sampled_from(["binance", "kraken"]),
                   st.sampled_from(sorted(ASSETS)), st.integers(1, 30)),
    values=st.tuples(st.sampled_from(["buy", "sell"]),
                     st.decimals(min_value=D("0.001"), max_value=D("5"), places=3),
                     st.decimals(min_value=D(0), max_value=D("0.001"), places=6),
                     st.booleans()),
    max_size=40,
)


@given(trades=trades, copies=st.lists(st.integers(0, 10_000), max_size=20), order=st.randoms())
def test_positions_are_the_sum_of_this_accounts_fills_once_per_trade_net_of_base_fees(
    trades: dict[tuple, tuple], copies: list[int], order: Any
) -> None:
    # Arrange: one Fill per (account, venue, symbol, trade id) - the same trade may be another account's too
    # (a self-trade between two accounts) - plus re-published copies, in any order
    unique = [_fill(acct, venue, sym, tid, side, str(qty), str(fee), ASSETS[sym][0] if in_base else "USDT")
              for (acct, venue, sym, tid), (side, qty, fee, in_base) in trades.items()]
    stream = unique + [dict(unique[i % len(unique)], ts_emit=9) for i in copies] if unique else []
    order.shuffle(stream)
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for (acct, venue, sym, _), (side, qty, fee, in_base) in trades.items():
        if acct == ME and venue == "binance":
            expected[sym] += (qty if side == "buy" else -qty) - (fee if in_base else 0)
    replay = FillsReplay(Positions(dict(ASSETS)), "binance", ME)

    # Act
    for fill in stream:
        replay.add(fill)

    # Assert
    for sym in ASSETS:
        assert replay.positions.get(sym).qty == expected[sym]
    mine = [f for f in stream if f["account"] == ME and f["venue"] == "binance"]
    assert replay.counts["applied"] == len({(f["symbol"], f["trade_id"]) for f in mine})
    assert replay.counts["duplicate"] == len(mine) - replay.counts["applied"]
    assert replay.counts["other_account"] == sum(1 for f in stream if f["venue"] == "binance"
                                                 and f["account"] not in (ME, ""))
    assert replay.counts["no_account"] == sum(1 for f in stream if f["venue"] == "binance" and f["account"] == "")
    assert replay.counts["other_venue"] == sum(1 for f in stream if f["venue"] != "binance")


def test_a_fill_written_before_fill_carried_an_account_decodes_and_is_not_claimed() -> None:
    # Arrange: a Fill framed with the first release's schema (no account field)
    v1 = released_raw_schema("v1", "Fill")
    record = {k: v for k, v in _fill(ME, "binance", "BTCUSDT", 5, "buy", "1", "0", "BTC").items() if k != "account"}
    parsed = fastavro.parse_schema(v1)
    buf = io.BytesIO()
    buf.write(b"\xc3\x01" + bytes.fromhex(avro_fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")))
    fastavro.schemaless_writer(buf, parsed, record)
    replay = FillsReplay(Positions(dict(ASSETS)), "binance", ME)

    # Act
    fill = AvroSerde().decode_as("Fill", buf.getvalue())
    outcome = replay.add(fill)

    # Assert
    assert fill["account"] == "" and outcome == "no_account"
    assert replay.positions.get("BTCUSDT").qty == 0


def test_a_fill_with_values_that_are_no_decimals_is_counted_malformed_and_left_out() -> None:
    replay = FillsReplay(Positions(dict(ASSETS)), "binance", ME)

    outcomes = [replay.add(_fill(ME, "binance", "BTCUSDT", 1, "buy", "abc", "0", "BTC")),
                replay.add(_fill(ME, "binance", "BTCUSDT", 2, "buy", "NaN", "0", "BTC")),
                replay.add(_fill(ME, "binance", "BTCUSDT", 3, "buy", "0.5", "0", "BTC"))]

    assert outcomes == ["malformed", "malformed", "applied"]
    assert replay.positions.get("BTCUSDT").qty == D("0.5")


def test_a_trade_before_the_start_balances_moves_the_position_but_not_the_expected_balance_change() -> None:
    # Arrange: balances read at venue time 1000 already hold trade 1; trade 2 came after them
    positions = Positions(dict(ASSETS))
    positions.baseline_ms = 1000

    # Act
    positions.apply_fill("BTCUSDT", 1, Side.BUY, D("100"), D("2"), D("0.002"), "BTC", trade_ms=1000)
    positions.apply_fill("BTCUSDT", 2, Side.SELL, D("110"), D("0.5"), D("0.11"), "USDT", trade_ms=1001)

    # Assert
    assert positions.get("BTCUSDT").qty == D("2") - D("0.002") - D("0.5")
    assert dict(positions.asset_delta) == {"BTC": D("-0.5"), "USDT": D("55") - D("0.11")}


def test_executor_events_carry_exact_differences_and_encode_with_the_schema() -> None:
    # Arrange
    events = ExecutorEvents("binance", ME, 1_700_000_000_000_000_000)
    check = BalanceCheck({"BTC": D("0.00999"), "USDT": D("-650.123456789012"), "XYZ": D("1E-8")},
                         D("1300.2500000001"), ("XYZ",))

    # Act
    diff = events.reconciliation(check, [("BTCUSDT", "manual-rest", False)], "ACTIVE", "", 10, 11)
    clear = events.reconciliation(BalanceCheck({}, D(0)), [], "REDUCING", "reconciliation: ...", 12, 13)
    state = events.risk_state("ACTIVE", "REDUCING", "reconciliation: ...", 10, 10, 11)
    serde = AvroSerde()
    decoded = [serde.decode_as("ExecutorEvent", serde.encode("ExecutorEvent", e)) for e in (diff, clear, state)]

    # Assert
    assert decoded == [diff, clear, state]
    assert [e["event_id"] for e in decoded] == [f"{ME}:1700000000000000000:{i}" for i in range(3)]
    assert [e["kind"] for e in decoded] == ["reconciliation_diff", "reconciliation_clear", "risk_state"]
    assert diff["balance_diffs"] == [{"asset": "BTC", "qty": "0.00999", "priced": True},
                                     {"asset": "USDT", "qty": "-650.123456789012", "priced": True},
                                     {"asset": "XYZ", "qty": "0.00000001", "priced": False}]
    assert diff["value_quote"] == "1300.2500000001"
    assert diff["open_orders"] == [{"symbol": "BTCUSDT", "client_order_id": "manual-rest", "ours": False}]
    assert "BTC +0.00999" in diff["detail"] and "1 foreign" in diff["detail"]
    assert (state["trading_state"], state["state_reason"]) == ("REDUCING", "reconciliation: ...")
