"""The execution views and the research Archive keep a backtest's records apart from the live ones."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sinks.research import Archive as ResearchArchive
from tests.integration.sinks.conftest import Archive
from tests.integration.sinks.known_data import known_history, write_history


def _as_backtest(records: list[dict[str, Any]], backtest_id: str, price_shift: Decimal | None = None) -> list[dict[str, Any]]:
    out = []
    for r in records:
        copy = {**r, "backtest_id": backtest_id}
        if price_shift is not None and copy.get("price") is not None:
            copy["price"] = str(Decimal(copy["price"]) + price_shift)
        out.append(copy)
    return out


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_backtest_with_the_live_ids_is_its_own_set_of_orders_fills_and_pnl(archive: Archive) -> None:
    # Arrange: the known live trading, and the same signals, orders and fills (same ids, same trade ids) as
    # backtest "bt1" filled 1 USDT worse
    history = known_history()
    one = Decimal(1)
    history["signals"] += _as_backtest(history["signals"], "bt1")
    history["orders"] += _as_backtest(history["orders"], "bt1")
    live_fills = list(history["fills"])
    history["fills"] += _as_backtest(live_fills, "bt1", one)
    write_history(archive.client, history)
    research = ResearchArchive(archive.client)

    # Act
    fills = {b: research.fills(backtest_id=b) for b in ("", "bt1")}
    orders = {b: research.execution_orders(backtest_id=b) for b in ("", "bt1")}
    pnl = {b: research.pnl(backtest_id=b) for b in ("", "bt1")}
    every = research.fills(backtest_id=None)

    # Assert: each set complete and alone; prices as written
    assert len(fills[""]) == len(fills["bt1"]) == len(live_fills) and len(every) == 2 * len(live_fills)
    live_price = {f["client_order_id"]: Decimal(f["price"]) for f in live_fills}
    for b, shift in (("", Decimal(0)), ("bt1", one)):
        rows = orders[b].set_index("client_order_id")
        assert len(rows) == len(live_price)
        assert all(rows.loc[cid, "avg_fill_price"] == price + shift for cid, price in live_price.items())
        assert set(rows["model"]) == {"imbalance-v1"}  # the signal of its own set joined
        # cash after the last fill: proceeds - cost, computed from the written fills
        cash = sum(((Decimal(f["price"]) + shift) * Decimal(f["qty"]) * (1 if f["side"] == "sell" else -1)
                    for f in live_fills), Decimal(0))
        assert pnl[b]["cash"].iloc[-1] == cash and len(pnl[b]) == len(live_fills)
