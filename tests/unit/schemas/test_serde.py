"""AvroSerde without a registry: round trips for every record type, exact decimals, and every way
a message can be wrong."""

from __future__ import annotations

import copy
import io
from typing import Any

import fastavro
import pytest
from fastavro.schema import fingerprint as avro_fingerprint
from fastavro.schema import to_parsing_canonical_form
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.settings import KafkaSettings
from schemas.avro_body import cavro
from schemas.framing import Framing, confluent_header
from schemas.registry import RECORD_NAMES, fingerprint, raw_schema
from schemas.serde import AvroSerde, SerdeError
from tests.unit.schemas.strategies import DECIMAL_EDGE_CASES, DECIMAL_STRINGS, record_strategy

SERDE = AvroSerde()

# where cavro has no wheel (Python 3.13+) fastavro encodes: it refuses with its own wording, and
# lets a float or a bool through in a long field
NEEDS_CAVRO = pytest.mark.skipif(cavro is None, reason="cavro is not installed on this Python; fastavro encodes")


def expected_wording(message: str) -> str | None:
    """The error text to match: cavro's wording, or any SerdeError where fastavro encodes."""
    return message if cavro is not None else None


TRADE: dict[str, Any] = {
    "venue": "binance",
    "symbol": "BTCUSDT",
    "trade_id": 42,
    "price": "0.00000001",
    "qty": "123456789.12345678",
    "side": "sell",
    "ts_event": 1_700_000_000_000_000_000,
    "ts_recv": 1_700_000_000_000_100_000,
}


def _book_delta(levels: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "venue": "binance",
        "symbol": "BTCUSDT",
        "snapshot": False,
        "first_update_id": 10,
        "last_update_id": 12,
        "bids": levels,
        "asks": list(reversed(levels)),
        "ts_event": 1,
        "ts_recv": 2,
    }


@pytest.mark.parametrize("name", RECORD_NAMES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_record_type_round_trips_unchanged(name: str, data: st.DataObject) -> None:
    # Arrange
    record = data.draw(record_strategy(raw_schema(name)), label=name)
    # Act
    message = SERDE.encode(name, copy.deepcopy(record))
    # Assert
    assert message[:2] == b"\xc3\x01" and message[2:10] == fingerprint(name)
    assert SERDE.decode(message) == (name, record)
    assert SERDE.decode_as(name, message) == record


@pytest.mark.parametrize("name", RECORD_NAMES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_body_is_byte_identical_to_fastavros_schemaless_writer(name: str, data: st.DataObject) -> None:
    # the serde encodes with cavro; every valid record must give the bytes the reference writer gives
    record = data.draw(record_strategy(raw_schema(name)), label=name)
    reference = io.BytesIO()
    fastavro.schemaless_writer(reference, fastavro.parse_schema(raw_schema(name)), copy.deepcopy(record))
    assert SERDE.encode(name, record)[10:] == reference.getvalue()


@pytest.mark.parametrize("value", DECIMAL_EDGE_CASES)
def test_decimal_edge_cases_round_trip_character_for_character(value: str) -> None:
    message = SERDE.encode("Trade", {**TRADE, "price": value, "qty": value})
    decoded = SERDE.decode_as("Trade", message)
    assert decoded["price"] == value and decoded["qty"] == value


@settings(max_examples=200)
@given(prices=st.lists(st.tuples(DECIMAL_STRINGS, DECIMAL_STRINGS), min_size=1, max_size=20))
def test_book_levels_keep_exact_decimal_strings(prices: list[tuple[str, str]]) -> None:
    levels = [{"price": p, "qty": q} for p, q in prices]
    decoded = SERDE.decode_as("BookDelta", SERDE.encode("BookDelta", _book_delta(levels)))
    assert [(lv["price"], lv["qty"]) for lv in decoded["bids"]] == prices


def test_default_serde_writes_single_object_encoding() -> None:
    assert AvroSerde().framing is Framing.SINGLE_OBJECT
    assert AvroSerde.from_settings(KafkaSettings()).framing is Framing.SINGLE_OBJECT


def test_registry_url_in_settings_selects_the_confluent_framing() -> None:
    # building the client opens no connection; the registry is first asked at the first encode
    serde = AvroSerde.from_settings(KafkaSettings(schema_registry_url="http://127.0.0.1:1"))
    assert serde.framing is Framing.CONFLUENT
    serde.close()


def test_confluent_encode_refuses_a_record_on_another_records_topic_before_asking_the_registry() -> None:
    # the registry URL is never contacted: the mismatch is caught first (no subject is polluted)
    serde = AvroSerde.from_settings(KafkaSettings(schema_registry_url="http://127.0.0.1:1"))
    with pytest.raises(SerdeError, match="topic md.book carries BookDelta, not Trade"):
        serde.encode("Trade", TRADE, topic="md.book")
    with pytest.raises(SerdeError, match="Bar travels on several topics"):
        serde.encode("Bar", _bar())
    with pytest.raises(SerdeError, match="unknown record type 'Tick'"):
        serde.encode("Tick", TRADE, topic="md.trades")
    serde.close()


def test_topic_argument_is_accepted_and_ignored_without_registry() -> None:
    assert SERDE.encode("Bar", _bar(), topic="bars.1m") == SERDE.encode("Bar", _bar())


def _bar() -> dict[str, Any]:
    return {
        "venue": "binance",
        "symbol": "BTCUSDT",
        "interval": "1m",
        "start": 0,
        "end": 60,
        "open": "1.0",
        "high": "2.0",
        "low": "0.5",
        "close": "1.5",
        "volume": "3",
        "quote_volume": "4.5",
        "vwap": "1.5",
        "trade_count": 3,
        "first_trade_id": 1,
        "last_trade_id": 3,
        "version": 0,
        "ts_event": 1,
        "ts_recv": 2,
        "ts_emit": 3,
    }


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({**TRADE, "price": 1.5}, "Invalid value 1.5 for type string at price"),
        ({**TRADE, "side": "hold"}, "'hold' is not a symbol of its enum"),
        ({**TRADE, "trade_id": 2**64}, "Trade does not match its schema"),
        ({**TRADE, "trade_id": "42"}, "Invalid value '42' for type long at trade_id"),
        ({k: v for k, v in TRADE.items() if k != "qty"}, "required field 'qty' missing"),
        # fastavro's writer took these silently (1.5 written as 1, 1 as true); the serde refuses them
        pytest.param({**TRADE, "ts_event": 1.5}, "Invalid value 1.5 for type long at ts_event", marks=NEEDS_CAVRO),
        pytest.param({**TRADE, "trade_id": True}, "True not valid for long", marks=NEEDS_CAVRO),
    ],
)
def test_encode_rejects_a_record_that_breaks_the_schema(record: dict[str, Any], message: str) -> None:
    with pytest.raises(SerdeError, match=expected_wording(message)):
        SERDE.encode("Trade", record)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bids": [{"price": 1.5, "qty": "1"}]}, "Invalid value 1.5 for type string at bids.price"),
        ({"asks": [{"price": "1"}]}, "Invalid value None for type string at asks.qty"),
        ({"bids": [["1", "2"]]}, r"Invalid value \['1', '2'\] for type record at bids"),
        ({"asks": "1"}, "Invalid value '1' for type array at asks"),
        ({"bids": None}, "Invalid value None for type array at bids"),
        ({"first_update_id": "1"}, "Invalid value '1' for type long at first_update_id"),
        ({"ts_recv": None}, "Invalid value None for type long at ts_recv"),
        ({"bids": [{"price": "\ud800", "qty": "1"}]}, "surrogates not allowed"),
    ],
)
def test_encode_rejects_a_book_delta_that_breaks_the_schema(change: dict[str, Any], message: str) -> None:
    # BookDelta's level arrays have their own writer (schemas.avro_body): it must refuse what cavro does
    with pytest.raises(SerdeError, match=expected_wording(message)):
        SERDE.encode("BookDelta", {**_book_delta([{"price": "1", "qty": "2"}]), **change})


@pytest.mark.parametrize("field", ["bids", "venue", "ts_recv"])
def test_encode_names_a_missing_book_delta_field(field: str) -> None:
    record = {k: v for k, v in _book_delta([]).items() if k != field}
    with pytest.raises(SerdeError, match=expected_wording(f"required field '{field}' missing")):
        SERDE.encode("BookDelta", record)


def test_long_and_non_ascii_level_strings_encode_like_fastavro() -> None:
    # lengths >= 64 take a multi-byte varint; non-ASCII text counts UTF-8 bytes, not characters
    record = _book_delta([{"price": "1" * 70, "qty": "\u00e9" * 40}, {"price": "", "qty": "0.5"}])
    reference = io.BytesIO()
    fastavro.schemaless_writer(reference, fastavro.parse_schema(raw_schema("BookDelta")), record)
    assert SERDE.encode("BookDelta", record)[10:] == reference.getvalue()
    assert SERDE.decode_as("BookDelta", SERDE.encode("BookDelta", record)) == record


def test_encode_rejects_an_unknown_record_type() -> None:
    with pytest.raises(SerdeError, match="unknown record type 'Tick'"):
        SERDE.encode("Tick", TRADE)


def test_decode_rejects_each_malformed_message_with_a_clear_error() -> None:
    good = SERDE.encode("Trade", TRADE)
    cases = {
        b"": "empty message",
        b"\xc3\x02" + good[2:]: "wrong single-object magic",
        b"\xc3\x01" + b"\x00" * 8 + good[10:]: "unknown schema fingerprint 0000000000000000",
        good + b"\x00": "1 trailing bytes after Trade",
        good[:-1]: "corrupt Trade body",
        b'{"price":"1"}': "unknown framing",
        confluent_header(3) + good[10:]: "schema id 3.*no schema registry is configured",
    }
    for data, message in cases.items():
        with pytest.raises(SerdeError, match=message):
            SERDE.decode(data)


def test_decode_accepts_any_buffer_and_refuses_none_and_text() -> None:
    good = SERDE.encode("Trade", TRADE)
    assert SERDE.decode(bytearray(good)) == ("Trade", TRADE)
    assert SERDE.decode(memoryview(good)) == ("Trade", TRADE)
    with pytest.raises(SerdeError, match="tombstone"):
        SERDE.decode(None)  # type: ignore[arg-type]
    with pytest.raises(SerdeError, match="expected bytes, got str"):
        SERDE.decode("c301")  # type: ignore[arg-type]


def test_every_truncation_of_a_message_is_refused() -> None:
    good = SERDE.encode("BookDelta", _book_delta([{"price": "1.00000000", "qty": "2"}] * 20))
    for cut in range(len(good)):
        with pytest.raises(SerdeError):
            SERDE.decode(good[:cut])


def test_decode_as_refuses_another_record_type() -> None:
    with pytest.raises(SerdeError, match="expected BBO, got Trade"):
        SERDE.decode_as("BBO", SERDE.encode("Trade", TRADE))


@settings(max_examples=300)
@given(flips=st.lists(st.tuples(st.integers(0, 200), st.integers(1, 255)), min_size=1, max_size=4))
def test_corrupted_bytes_decode_or_raise_serde_error_only(flips: list[tuple[int, int]]) -> None:
    data = bytearray(SERDE.encode("Trade", TRADE))
    for position, xor in flips:
        data[position % len(data)] ^= xor
    try:
        name, record = SERDE.decode(bytes(data))
    except SerdeError:
        return
    assert name == "Trade" and set(record) == set(TRADE)


@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_serde_error_only(data: bytes) -> None:
    try:
        SERDE.decode(b"\xc3\x01" + fingerprint("Signal") + data)
    except SerdeError:
        pass


def test_message_of_an_older_schema_is_resolved_to_the_current_record() -> None:
    # Arrange: DeadLetter as it would have looked before venue/symbol/partition were added
    old = copy.deepcopy(raw_schema("DeadLetter"))
    old["fields"] = [f for f in old["fields"] if f["name"] not in ("venue", "symbol", "partition")]
    serde = AvroSerde()
    serde.accept_writer_schema("DeadLetter", old)
    old_serde_message = _single_object(
        old,
        {
            "stage": "sink",
            "source_topic": "md.trades",
            "offset": 7,
            "raw": b"\x00",
            "error": "boom",
            "ts_event": 1,
            "ts_recv": 2,
        },
    )
    # Act
    name, record = serde.decode(old_serde_message)
    # Assert
    assert name == "DeadLetter"
    assert record == {
        "venue": "",
        "symbol": "",
        "stage": "sink",
        "source_topic": "md.trades",
        "partition": -1,
        "offset": 7,
        "raw": b"\x00",
        "error": "boom",
        "ts_event": 1,
        "ts_recv": 2,
    }


def test_older_schema_the_current_one_cannot_read_is_refused() -> None:
    old = copy.deepcopy(raw_schema("Trade"))
    old["fields"] = [f for f in old["fields"] if f["name"] != "side"]  # current Trade.side has no default
    with pytest.raises(SerdeError, match=r"Trade.side: field added without a default"):
        AvroSerde().accept_writer_schema("Trade", old)


def test_unknown_fingerprint_of_an_older_schema_is_refused_until_accepted() -> None:
    old = copy.deepcopy(raw_schema("DeadLetter"))
    old["fields"] = [f for f in old["fields"] if f["name"] != "venue"]
    message = _single_object(
        old,
        {
            "symbol": "",
            "stage": "feed",
            "source_topic": "ws",
            "partition": -1,
            "offset": -1,
            "raw": b"",
            "error": "x",
            "ts_event": 1,
            "ts_recv": 1,
        },
    )
    with pytest.raises(SerdeError, match="unknown schema fingerprint"):
        AvroSerde().decode(message)


def _single_object(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    # frames data the way a serde holding only the older schema would have
    parsed = fastavro.parse_schema(schema)
    buf = io.BytesIO()
    buf.write(b"\xc3\x01" + bytes.fromhex(avro_fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")))
    fastavro.schemaless_writer(buf, parsed, record)
    return buf.getvalue()
