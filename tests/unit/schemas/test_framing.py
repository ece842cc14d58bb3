"""The pure header functions of both framings (no registry needed)."""

from __future__ import annotations

import io

import pytest
from fastavro import schemaless_reader, schemaless_writer
from hypothesis import given
from hypothesis import strategies as st

from schemas.framing import (
    CONFLUENT_HEADER_LEN,
    MAX_SCHEMA_ID,
    SINGLE_OBJECT_HEADER_LEN,
    Framing,
    SerdeError,
    confluent_header,
    parse_header,
    single_object_header,
)
from schemas.registry import fingerprint, parsed_schema

TRADE = {
    "venue": "binance",
    "symbol": "BTCUSDT",
    "trade_id": 42,
    "price": "0.00000001",
    "qty": "123456789.12345678",
    "side": "sell",
    "ts_event": 1,
    "ts_recv": 2,
}


@given(schema_id=st.integers(0, MAX_SCHEMA_ID), body=st.binary(max_size=32))
def test_confluent_header_round_trips_schema_id_and_body_offset(schema_id: int, body: bytes) -> None:
    # Arrange
    message = confluent_header(schema_id) + body
    # Act
    header = parse_header(message)
    # Assert
    assert header.framing is Framing.CONFLUENT
    assert header.key == schema_id
    assert message[header.body_offset :] == body


def test_confluent_header_is_magic_zero_and_big_endian_id() -> None:
    assert confluent_header(0x01020304) == b"\x00\x01\x02\x03\x04"
    assert len(confluent_header(1)) == CONFLUENT_HEADER_LEN


@given(fp=st.binary(min_size=8, max_size=8), body=st.binary(max_size=32))
def test_single_object_header_round_trips_fingerprint(fp: bytes, body: bytes) -> None:
    header = parse_header(single_object_header(fp) + body)
    assert header == (Framing.SINGLE_OBJECT, fp, SINGLE_OBJECT_HEADER_LEN)


def test_single_object_header_matches_the_avro_spec_for_trade() -> None:
    # spec: C3 01, then the 8-byte little-endian CRC-64-AVRO fingerprint of the canonical form
    header = single_object_header(fingerprint("Trade"))
    assert header[:2] == b"\xc3\x01" and header[2:] == fingerprint("Trade") and len(header) == 10


def test_confluent_body_is_plain_schemaless_avro() -> None:
    # What the registry-less side of the Confluent format can be checked on: header + schemaless body
    buf = io.BytesIO()
    schemaless_writer(buf, parsed_schema("Trade"), TRADE)
    message = confluent_header(7) + buf.getvalue()
    header = parse_header(message)
    body = io.BytesIO(message)
    body.seek(header.body_offset)
    assert schemaless_reader(body, parsed_schema("Trade"), None) == TRADE
    assert body.tell() == len(message)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty message"),
        (b"\xc3", "truncated single-object header"),
        (b"\xc3\x01\x00\x00", "truncated single-object header"),
        (b"\xc3\x02" + b"\x00" * 8, "wrong single-object magic c302"),
        (b"\x00", "truncated Confluent header"),
        (b"\x00\x00\x00\x01", "truncated Confluent header"),
        (b'{"price": "1"}', "unknown framing (first bytes 7b227072)"),
        (b"\x01\x00\x00\x00\x01", "unknown framing"),
    ],
)
def test_parse_header_rejects_anything_else_with_a_clear_message(data: bytes, message: str) -> None:
    with pytest.raises(SerdeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_header(data)


@given(data=st.binary(max_size=16))
def test_parse_header_either_parses_or_raises_serde_error(data: bytes) -> None:
    try:
        header = parse_header(data)
    except SerdeError:
        return
    assert header.body_offset <= len(data)
    assert data[0] in (0x00, 0xC3)


def test_header_builders_refuse_out_of_range_keys() -> None:
    with pytest.raises(ValueError, match="schema id"):
        confluent_header(MAX_SCHEMA_ID + 1)
    with pytest.raises(ValueError, match="schema id"):
        confluent_header(-1)
    with pytest.raises(ValueError, match="8 bytes"):
        single_object_header(b"\x00" * 7)
