"""Schema evolution: every current schema reads data written with every released snapshot, and the
checker itself catches incompatible changes (proved on deliberately broken schemas)."""

from __future__ import annotations

import copy
import io
from typing import Any

import fastavro
import pytest
from fastavro.read import SchemaResolutionError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.compat import backward_problems
from schemas.registry import RECORD_NAMES, raw_schema, released_raw_schema, released_versions
from tests.unit.schemas.strategies import record_strategy


def _released_pairs() -> list[tuple[str, str]]:
    # a record type introduced after a release has nothing to be compatible with in it
    pairs = []
    for version in released_versions():
        for name in RECORD_NAMES:
            try:
                released_raw_schema(version, name)
            except KeyError:
                continue
            pairs.append((version, name))
    return pairs


RELEASED = _released_pairs()


def _write_then_read(
    writer: dict[str, Any], reader: dict[str, Any], record: dict[str, Any]
) -> dict[str, Any]:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(writer), record)
    buf.seek(0)
    return fastavro.schemaless_reader(buf, fastavro.parse_schema(writer), fastavro.parse_schema(reader))


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def test_every_record_is_in_the_newest_release_and_v1_keeps_the_first_eleven() -> None:
    # every schema that may be on a topic is released, so its data stays decodable after the next change
    # (fills and orders are kept forever)
    assert released_versions()[0] == "v1"
    for name in RECORD_NAMES:
        assert released_raw_schema(released_versions()[-1], name)["name"] == name
    first = {"Trade", "BookDelta", "BBO", "FeedEvent", "BookFeatures", "FlowFeatures", "Bar", "Signal", "OrderEvent",
             "Fill", "DeadLetter"}
    assert {name for name in RECORD_NAMES if _in_release("v1", name)} == first


def _in_release(version: str, name: str) -> bool:
    try:
        released_raw_schema(version, name)
    except KeyError:
        return False
    return True


@pytest.mark.parametrize(("version", "name"), RELEASED)
def test_current_schema_passes_the_checker_against_each_release(version: str, name: str) -> None:
    assert backward_problems(released_raw_schema(version, name), raw_schema(name)) == []


@pytest.mark.parametrize(("version", "name"), RELEASED)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_current_schema_reads_data_written_with_each_release(
    version: str, name: str, data: st.DataObject
) -> None:
    # Arrange: writer = released, reader = current (fastavro schema resolution)
    released, current = released_raw_schema(version, name), raw_schema(name)
    record = data.draw(record_strategy(released))
    # Act
    decoded = _write_then_read(released, current, record)
    # Assert: existing fields unchanged, fields added since carry their defaults
    released_names = {f["name"] for f in released["fields"]}
    for field in current["fields"]:
        if field["name"] in released_names:
            assert decoded[field["name"]] == record[field["name"]]
        else:
            assert decoded[field["name"]] == field["default"]


def test_checker_flags_a_field_added_without_default_and_avro_cannot_read_old_data() -> None:
    # Arrange: a deliberately broken Trade
    old = released_raw_schema("v1", "Trade")
    broken = copy.deepcopy(old)
    broken["fields"].append({"name": "maker_order_id", "type": "long", "doc": "new"})
    # Act / Assert: the checker says why ...
    assert backward_problems(old, broken) == ["Trade.maker_order_id: field added without a default"]
    # ... and that is really incompatible: resolution of old data fails
    with pytest.raises(SchemaResolutionError):
        _write_then_read(old, broken, _trade())


def test_checker_flags_a_changed_field_type() -> None:
    old = released_raw_schema("v1", "Trade")
    broken = copy.deepcopy(old)
    _field(broken, "price")["type"] = "double"  # decimal string -> binary float
    assert backward_problems(old, broken) == ["Trade.price: type changed from string to double"]
    with pytest.raises(SchemaResolutionError):
        _write_then_read(old, broken, _trade())


def test_checker_flags_a_type_change_deep_in_a_nested_record() -> None:
    old = released_raw_schema("v1", "BookDelta")
    broken = copy.deepcopy(old)
    _field(broken, "bids")["type"]["items"]["fields"][1]["type"] = "bytes"  # Level.qty
    # Level is shared by bids and asks, so both paths change
    assert backward_problems(old, broken) == [
        "BookDelta.bids[].qty: type changed from string to bytes",
        "BookDelta.asks[].qty: type changed from string to bytes",
    ]


def test_checker_flags_a_promotion_even_though_avro_would_allow_it() -> None:
    # int -> long resolves in Avro, but tickpipe keeps existing field types exactly
    old = released_raw_schema("v1", "Bar")
    changed = copy.deepcopy(old)
    _field(changed, "version")["type"] = "long"
    assert backward_problems(old, changed) == ["Bar.version: type changed from int to long"]


def test_checker_flags_wrapping_a_field_into_a_union_and_removing_a_union_branch() -> None:
    old = released_raw_schema("v1", "OrderEvent")
    changed = copy.deepcopy(old)
    _field(changed, "qty")["type"] = ["null", "string"]
    _field(changed, "error_code")["type"] = "null"
    _field(changed, "price")["type"] = ["null"]
    assert backward_problems(old, changed) == [
        "OrderEvent.price: union branch string removed",
        "OrderEvent.qty: type changed from string to [null, string]",
        "OrderEvent.error_code: type changed from [null, int] to null",
    ]


def test_checker_flags_a_removed_enum_symbol_without_enum_default() -> None:
    old = released_raw_schema("v1", "Trade")
    broken = copy.deepcopy(old)
    _field(broken, "side")["type"]["symbols"] = ["buy"]
    assert backward_problems(old, broken) == [
        "Trade.side: enum symbols ['sell'] removed and the enum has no default"
    ]
    with pytest.raises(SchemaResolutionError):
        _write_then_read(old, broken, {**_trade(), "side": "sell"})


def test_checker_accepts_compatible_changes_and_avro_resolves_them() -> None:
    # Arrange: new field with default, new enum symbol, new union branch, a removed field
    old = released_raw_schema("v1", "FeedEvent")
    evolved = copy.deepcopy(old)
    evolved["fields"].append({"name": "latency_ns", "type": "long", "default": -1, "doc": "new"})
    _field(evolved, "kind")["type"]["symbols"].append("throttled")
    _field(evolved, "first_update_id")["type"] = ["null", "long", "string"]
    evolved["fields"] = [f for f in evolved["fields"] if f["name"] != "detail"]
    record = {
        "event_id": "c1:1",
        "venue": "binance",
        "symbol": "BTCUSDT",
        "kind": "gap",
        "connection_id": "c1",
        "detail": "missed 3",
        "first_update_id": 5,
        "last_update_id": 7,
        "count": 3,
        "ts_event": 1,
        "ts_recv": 2,
    }
    # Act
    problems = backward_problems(old, evolved)
    decoded = _write_then_read(old, evolved, record)
    # Assert
    assert problems == []
    expected = {k: v for k, v in record.items() if k != "detail"}
    assert decoded == {**expected, "latency_ns": -1}


def _trade() -> dict[str, Any]:
    return {
        "venue": "binance",
        "symbol": "BTCUSDT",
        "trade_id": 1,
        "price": "0.00000001",
        "qty": "123456789.12345678",
        "side": "buy",
        "ts_event": 1,
        "ts_recv": 2,
    }
