"""Signal ids and the OFI + microprice baseline model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.models.base import BookObservation, InputRef
from streams.models.ofi_microprice import OfiMicropriceModel, ofi_contribution
from streams.signals import signal_id, signal_record

MS = 1_000_000

refs = st.lists(
    st.builds(InputRef, st.sampled_from(["md.book", "md.trades"]), st.integers(0, 3), st.integers(0, 10**9)),
    min_size=1, max_size=5,
)


@settings(max_examples=200)
@given(refs, st.randoms(use_true_random=False))
def test_signal_id_depends_only_on_model_and_input_positions(inputs, rnd):
    shuffled = inputs[:]
    rnd.shuffle(shuffled)
    assert signal_id("m/1", inputs) == signal_id("m/1", shuffled)
    assert signal_id("m/1", inputs) != signal_id("m/2", inputs)
    moved = [InputRef(inputs[0].topic, inputs[0].partition, inputs[0].offset + 1), *inputs[1:]]
    if set(moved) != set(inputs):
        assert signal_id("m/1", moved) != signal_id("m/1", inputs)


def test_ofi_contribution_cases():
    # bid up: +new bid qty; ask unchanged: -new ask qty + old ask qty
    assert ofi_contribution([100, 5, 101, 4], [100.5, 2, 101, 3]) == 2 - 3 + 4
    # both unchanged: change in bid qty minus change in ask qty
    assert ofi_contribution([100, 5, 101, 4], [100, 7, 101, 1]) == (7 - 5) - (1 - 4)
    # bid down, ask down
    assert ofi_contribution([100, 5, 101, 4], [99, 2, 100.5, 6]) == -5 - 6


def obs(i: int, bid_qty: float, ask_qty: float, ts_ms: int) -> BookObservation:
    bid, ask = 100.0, 101.0
    mid = (bid + ask) / 2
    micro = (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)
    return BookObservation(bid, bid_qty, ask, ask_qty, mid, micro, 1.0, 0.0, ts_ms * MS, ts_ms * MS + 7,
                           InputRef("md.book", 0, i))


def buy_pressure(model: OfiMicropriceModel, start_ms: int, n: int, first_offset: int, state: dict) -> list:
    # bids grow and asks shrink at the touch: OFI > 0 and microprice above mid
    out = []
    for k in range(n):
        o = obs(first_offset + k, 10.0 + 5 * (first_offset + k), 10.0 / (1 + first_offset + k), start_ms + 10 * k)
        out.append(model.observe(state, o))
    return out


def test_model_fires_once_then_respects_cooldown_then_fires_again():
    # Arrange
    model = OfiMicropriceModel(window_ns=1000 * MS, min_updates=3, cooldown_ns=500 * MS)
    state = model.new_state()
    # Act
    first = buy_pressure(model, 0, 20, 0, state)
    later = buy_pressure(model, 600, 20, 20, state)
    # Assert
    fired = [d for d in first if d is not None]
    assert len(fired) == 1 and fired[0].side == "buy" and fired[0].strength > 0
    assert 0.0 <= fired[0].urgency <= 1.0
    fired_later = [d for d in later if d is not None]
    assert len(fired_later) == 1
    assert fired_later[0].ts_event - fired[0].ts_event >= 500 * MS


def test_model_needs_min_updates_and_agreement():
    model = OfiMicropriceModel(window_ns=1000 * MS, min_updates=50)
    state = model.new_state()
    assert all(d is None for d in buy_pressure(model, 0, 20, 0, state))
    # OFI positive but microprice below mid (asks much larger): no signal
    model = OfiMicropriceModel(window_ns=1000 * MS, min_updates=2)
    state = model.new_state()
    decisions = [model.observe(state, obs(k, 1.0 + k * 0.01, 50.0 - k * 0.001, k)) for k in range(20)]
    assert all(d is None for d in decisions)


def test_same_observations_give_same_signal_records():
    model = OfiMicropriceModel(window_ns=1000 * MS, min_updates=3, cooldown_ns=500 * MS)
    runs = []
    for _ in range(2):
        state = model.new_state()
        decisions = [d for d in buy_pressure(model, 0, 20, 40, state) if d]
        runs.append([signal_record(d, model.name, "binance", "BTCUSDT", "0.001", 2000 * MS, 0) for d in decisions])
    assert runs[0] == runs[1] and runs[0]
    rec = runs[0][0]
    assert rec["inputs"][0]["offset"] < rec["inputs"][-1]["offset"]
    assert rec["expires_at"] == rec["ts_recv"] + 2000 * MS
