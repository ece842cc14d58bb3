"""`tickpipe top`'s pure parts: message rates from offset samples, open-order states."""

from __future__ import annotations

from executor.order import TERMINAL
from infra.top import OPEN_ORDERS_SQL, topic_rates


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
