"""`tickpipe top`'s pure parts: message rates from offset samples, open-order states, failed queries named."""

from __future__ import annotations

from rich.console import Console

from infra.settings import KafkaSettings
from infra.top import OPEN_ORDERS_SQL, Endpoints, Sampler, _executor_view, topic_rates
from schemas.order_status import TERMINAL


def test_rates_are_offset_deltas_per_second() -> None:
    assert topic_rates({"md.trades": 100, "md.book": 10}, {"md.trades": 300, "md.book": 10}, 2.0) == {
        "md.trades": 100.0, "md.book": 0.0,
    }


def test_a_new_topic_and_a_reset_broker_give_zero_not_negative_rates() -> None:
    rates = topic_rates({"md.trades": 500}, {"md.trades": 20, "signals": 7}, 1.0)

    assert rates == {"md.trades": 0.0, "signals": 0.0}


def test_no_elapsed_time_gives_zero_rates() -> None:
    assert topic_rates({"a": 1}, {"a": 5}, 0.0) == {"a": 0.0}


def test_open_orders_exclude_every_terminal_state_of_the_executor() -> None:
    for status in TERMINAL:
        assert f"'{status.value}'" in OPEN_ORDERS_SQL


class _Sampler(Sampler):
    def __init__(self, positions: dict[str, str], failing: bool) -> None:
        super().__init__(Endpoints(KafkaSettings(), "http://127.0.0.1:1", "tickpipe", None, "http://127.0.0.1:1/health"))
        self.positions, self.failing = positions, failing

    def health(self, url: str | None) -> dict:
        return {"started": True, "trading_state": "ACTIVE", "open_orders": 0, "inflight": 0, "positions": self.positions}

    def query(self, sql: str) -> list[dict]:
        if self.failing:
            raise RuntimeError("Code: 60. Unknown table tickpipe.fills")
        return []


def _text(sampler: Sampler) -> str:
    console = Console(width=200, record=True)
    console.print(_executor_view(sampler))
    return console.export_text()


def test_executor_view_says_query_failed_rather_than_no_positions() -> None:
    assert "no positions" in _text(_Sampler({}, failing=False))

    text = _text(_Sampler({}, failing=True))

    assert "PnL query failed" in text and "Unknown table" in text and "no positions" not in text


def test_executor_view_keeps_positions_and_names_the_failed_query() -> None:
    text = _text(_Sampler({"BTCUSDT": "0.5"}, failing=True))

    assert "BTCUSDT" in text and "0.5" in text and "PnL query failed" in text
