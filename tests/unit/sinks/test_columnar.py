"""Column-wise Avro decoding: the same values as fastavro, and nothing it cannot vouch for."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.registry import RECORD_NAMES, raw_schema
from schemas.serde import AvroSerde, SerdeError
from sinks.columnar import columnar_decoder

SERDE = AvroSerde()
FLAT_RECORDS = [name for name in RECORD_NAMES if columnar_decoder(name) is not None]
LONGS = st.integers(-(2**63), 2**63 - 1)


def _value(avro: Any) -> st.SearchStrategy[Any]:
    if isinstance(avro, list):
        return st.one_of(st.none(), _value(avro[1]))
    if isinstance(avro, dict) and avro["type"] == "enum":
        return st.sampled_from(avro["symbols"])
    kind = avro["type"] if isinstance(avro, dict) else avro
    return {
        "string": st.text(max_size=12),
        "bytes": st.binary(max_size=12),
        "long": LONGS,
        "int": st.integers(-(2**31), 2**31 - 1),
        "boolean": st.booleans(),
        "double": st.floats(allow_nan=False),
        "float": st.floats(width=32, allow_nan=False),
    }[kind]


def _records(name: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({f["name"]: _value(f["type"]) for f in raw_schema(name)["fields"]})


def _same(a: Any, b: Any) -> bool:
    return (isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=0, abs_tol=0)) or a == b


def _row(arrays: dict[str, Any], index: int) -> dict[str, Any]:
    return {name: array[index].as_py() for name, array in arrays.items()}


def test_only_records_with_arrays_or_named_references_are_left_to_fastavro() -> None:
    assert {"Trade", "BBO", "FeedEvent", "Bar", "Fill"} <= set(FLAT_RECORDS)
    assert columnar_decoder("BookDelta") is None  # array of levels


@pytest.mark.parametrize("name", FLAT_RECORDS)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_every_flat_record_decodes_to_what_fastavro_reads(name: str, data: st.DataObject) -> None:
    # Arrange
    records = data.draw(st.lists(_records(name), min_size=1, max_size=20))
    payloads = [SERDE.encode(name, r) for r in records]
    # Act
    arrays, ok = columnar_decoder(name).decode(payloads)  # type: ignore[union-attr]
    # Assert
    assert ok.all()
    for index, payload in enumerate(payloads):
        expected = SERDE.decode(payload)[1]
        got = _row(arrays, index)
        assert all(_same(got[k], expected[k]) for k in expected), (got, expected)


_MUTATIONS = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 200)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("flip"), st.integers(0, 200), st.integers(1, 255)),
)


@settings(max_examples=60, deadline=None)
@given(records=st.lists(_records("Trade"), min_size=1, max_size=8), mutation=_MUTATIONS, victim=st.integers(0, 7))
def test_a_damaged_message_is_flagged_or_reads_exactly_as_fastavro_reads_it(
    records: list[dict[str, Any]], mutation: tuple[Any, ...], victim: int
) -> None:
    # Arrange: one message of the poll damaged, the others intact
    payloads = [SERDE.encode("Trade", r) for r in records]
    victim %= len(payloads)
    raw = bytearray(payloads[victim])
    if mutation[0] == "truncate":
        raw = raw[: mutation[1] % len(raw)]
    elif mutation[0] == "append":
        raw += mutation[1]
    else:
        raw[mutation[1] % len(raw)] ^= mutation[2]
    payloads[victim] = bytes(raw)
    # Act
    arrays, ok = columnar_decoder("Trade").decode(payloads)  # type: ignore[union-attr]
    # Assert: neighbours are untouched; the damaged one is refused unless fastavro reads the same record
    for index, payload in enumerate(payloads):
        if index != victim:
            assert ok[index] and _row(arrays, index) == records[index]
    if mutation[0] in ("truncate", "append"):
        assert not ok[victim]  # its last field does not end where the message does
    if ok[victim]:
        assert _row(arrays, victim) == SERDE.decode(payloads[victim])[1]


def test_other_framings_and_schemas_are_flagged_for_the_per_message_path() -> None:
    trade = {"venue": "binance", "symbol": "BTCUSDT", "trade_id": 1, "price": "1", "qty": "2", "side": "buy",
             "ts_event": 1, "ts_recv": 2}
    bbo = {"venue": "binance", "symbol": "BTCUSDT", "update_id": 1, "bid_price": "1", "bid_qty": "1",
           "ask_price": "2", "ask_qty": "1", "ts_event": 1, "ts_recv": 2}
    good = SERDE.encode("Trade", trade)
    confluent = b"\x00\x00\x00\x00\x07" + good[10:]
    try:
        other_record = SERDE.encode("BBO", bbo)
    except SerdeError:  # BBO fields differ from this guess: any other record's bytes will do
        other_record = SERDE.encode("FeedEvent", {})
    _, ok = columnar_decoder("Trade").decode([good, confluent, other_record, b"", b"\xc3"])  # type: ignore[union-attr]
    assert ok.tolist() == [True, False, False, False, False]


def test_an_overlong_varint_is_flagged() -> None:
    good = SERDE.encode("Trade", {"venue": "v", "symbol": "s", "trade_id": 1, "price": "1", "qty": "2",
                                  "side": "buy", "ts_event": 1, "ts_recv": 2})
    # trade_id (after two 1-byte strings) replaced by eleven continuation bytes
    head = good[:10] + good[10:14]
    overlong = head + b"\xff" * 11 + good[15:]
    _, ok = columnar_decoder("Trade").decode([overlong, good])  # type: ignore[union-attr]
    assert ok.tolist() == [False, True]
    assert np.asarray(ok).dtype == bool
