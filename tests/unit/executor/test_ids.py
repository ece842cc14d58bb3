"""Client order ids: deterministic, venue-legal, distinct per (signal, leg, attempt), parseable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor.ids import MAX_LEN, VENUE_CHARSET, client_order_id, parse_client_order_id, signal_digest


@given(st.text(min_size=1, max_size=200), st.integers(0, 99), st.integers(0, 9999))
def test_id_is_deterministic_legal_and_parses_back(signal_id: str, leg: int, attempt: int) -> None:
    cid = client_order_id(signal_id, leg, attempt)

    assert cid == client_order_id(signal_id, leg, attempt)
    assert len(cid) <= MAX_LEN and VENUE_CHARSET.match(cid)
    assert parse_client_order_id(cid) == (signal_digest(signal_id), leg, attempt)


@given(st.text(min_size=1, max_size=50), st.text(min_size=1, max_size=50))
def test_different_signals_give_different_ids(a: str, b: str) -> None:
    if a != b:
        assert client_order_id(a, 0, 0) != client_order_id(b, 0, 0)


def test_attempt_and_leg_change_the_id() -> None:
    ids = {client_order_id("s", leg, attempt) for leg in range(3) for attempt in range(3)}

    assert len(ids) == 9


@pytest.mark.parametrize("cid", ["", "web_123", "tp-zz-0-0", "x" * 36])
def test_foreign_ids_are_not_ours(cid: str) -> None:
    assert parse_client_order_id(cid) is None


def test_out_of_range_attempt_is_refused() -> None:
    with pytest.raises(ValueError, match="attempt"):
        client_order_id("s", 0, 10_000)
