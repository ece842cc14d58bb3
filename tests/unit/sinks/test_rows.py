"""Record -> row mapping: decimal exactness, times, levels, defaults, rejects."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.serde import AvroSerde
from sinks.arrow_block import arrow_table, decoded_table, plain_decimals
from sinks.columnar import columnar_decoder
from sinks.ddl import table_spec
from sinks.rows import _PLAIN_DECIMAL, RowError, RowMapper, decimal_string

TRADE = {"venue": "binance", "symbol": "BTCUSDT", "trade_id": 7, "price": "123456789.12345678", "qty": "0.00000001",
         "side": "buy", "ts_event": 1_700_000_000_123_456_789, "ts_recv": 1_700_000_000_123_457_000}


def test_trade_row_keeps_decimal_strings_times_and_metadata() -> None:
    # Arrange
    mapper = RowMapper(table_spec("md.trades"))
    # Act
    row = mapper.row(TRADE, "md.trades", 2, 41)
    # Assert
    assert row == ("binance", "BTCUSDT", 7, "123456789.12345678", "0.00000001", "buy",
                   1_700_000_000_123_456_789, 1_700_000_000_123_457_000, "md.trades", 2, 41)


@pytest.mark.parametrize("text", ["0.00000001", "123456789.12345678", "-5", "99999999999999999999.999999999999999999",
                                  "1E-8", "0.100000000000000000000"])
def test_decimal_strings_that_fit_are_exact_after_arrow_cast(text: str) -> None:
    spec = table_spec("md.trades")
    row = RowMapper(spec).row({**TRADE, "price": text}, "md.trades", 0, 0)
    price = arrow_table(spec, [row], "id").column("price")[0].as_py()
    assert price == Decimal(text)


@pytest.mark.parametrize("text", ["abc", "", "NaN", "inf", "0.0000000000000000001", "123456789012345678901"])
def test_venue_decimals_that_do_not_fit_are_rejected(text: str) -> None:
    with pytest.raises(RowError):
        RowMapper(table_spec("md.trades")).row({**TRADE, "qty": text}, "md.trades", 0, 0)


def test_derived_decimal_is_rounded_half_even_to_18_places() -> None:
    assert decimal_string("1.0000000000000000005", derived=True) == "1.000000000000000000"
    assert decimal_string("1.0000000000000000015", derived=True) == "1.000000000000000002"


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=Decimal("-1e19"), max_value=Decimal("1e19"), places=18, allow_nan=False,
                   allow_infinity=False))
def test_any_decimal38_18_value_round_trips_through_row_and_arrow(value: Decimal) -> None:
    text = format(value, "f")
    spec = table_spec("md.trades")
    row = RowMapper(spec).row({**TRADE, "price": text}, "md.trades", 0, 0)
    assert arrow_table(spec, [row], "id").column("price")[0].as_py() == value


def test_book_levels_become_list_of_structs_with_exact_decimals() -> None:
    spec = table_spec("md.book")
    record = {"venue": "binance", "symbol": "ETHUSDT", "snapshot": True, "first_update_id": 1, "last_update_id": 3,
              "bids": [{"price": "3000.01", "qty": "0.5"}], "asks": [{"price": "3000.02", "qty": "0"}],
              "ts_event": 1, "ts_recv": 2}
    table = arrow_table(spec, [RowMapper(spec).row(record, "md.book", 1, 9)], "id")
    assert table.column("bids")[0].as_py() == [{"price": Decimal("3000.01"), "qty": Decimal("0.5")}]
    assert table.schema.field("asks").type == pa.list_(pa.struct([("price", pa.decimal128(38, 18)),
                                                                  ("qty", pa.decimal128(38, 18))]))


def test_missing_field_with_avro_default_takes_the_default() -> None:
    spec = table_spec("orders")
    record = {"client_order_id": "c1", "seq": 0, "signal_id": "s1", "venue": "binance", "symbol": "BTCUSDT",
              "side": "buy", "order_type": "LIMIT", "qty": "1", "status": "new", "ts_event": 1, "ts_recv": 2,
              "ts_emit": 3}
    row = dict(zip(spec.column_names, RowMapper(spec).row(record, "orders", 0, 0), strict=True))
    assert row["filled_qty"] == "0" and row["price"] is None and row["time_in_force"] is None


def test_missing_field_without_default_is_a_row_error() -> None:
    record = {k: v for k, v in TRADE.items() if k != "trade_id"}
    with pytest.raises(RowError, match="trade_id"):
        RowMapper(table_spec("md.trades")).row(record, "md.trades", 0, 0)


def test_digits_of_other_scripts_are_normalised_to_ascii_not_passed_to_arrow() -> None:
    # "٣" is a digit to Python's \d and to Decimal, but Arrow's decimal cast refuses it
    spec = table_spec("md.trades")
    row = RowMapper(spec).row({**TRADE, "price": "٣.٥"}, "md.trades", 0, 0)
    assert row[3] == "3.5"
    assert arrow_table(spec, [row], "id").column("price")[0].as_py() == Decimal("3.5")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(alphabet="-0123456789.e٣ ", max_size=42),
                          st.decimals(allow_nan=False, allow_infinity=False).map(str)), min_size=1, max_size=10))
def test_vectorised_plain_decimal_check_agrees_with_the_per_value_rule(texts: list[str]) -> None:
    plain = plain_decimals(pa.array(texts, pa.string()))
    assert plain.tolist() == [bool(_PLAIN_DECIMAL.fullmatch(t)) for t in texts]


def test_column_wise_block_has_the_row_path_types_and_concatenates_behind_rows() -> None:
    # Arrange: the same trade through both paths
    spec = table_spec("md.trades")
    serde = AvroSerde()
    fields, ok = columnar_decoder("Trade").decode([serde.encode("Trade", TRADE)] * 2)  # type: ignore[union-attr]
    keep = ok & plain_decimals(fields["price"]) & plain_decimals(fields["qty"])
    keep[1] = False
    # Act
    block = decoded_table(spec, fields, keep, "md.trades", np.array([2, 3]), np.array([41, 42]))
    table = arrow_table(spec, [RowMapper(spec).row(TRADE, "md.trades", 2, 40)], "id", [block])
    # Assert
    assert table.num_rows == 2 and table.column("_topic_id").to_pylist() == ["id", "id"]
    first, second = table.to_pylist()
    assert {k: v for k, v in first.items() if k != "_offset"} == {k: v for k, v in second.items() if k != "_offset"}
    assert (first["_offset"], second["_offset"]) == (40, 41)
