"""Pure mapping from a decoded Avro record to the row the sink inserts (no I/O).

Decimal fields stay decimal *strings* in the row, validated here so that the columnar step can
cast a whole column to ``decimal128(38, 18)`` at once (exact, vectorised) without one bad value
failing a batch. A venue value that does not fit ``Decimal(38, 18)`` exactly is a :class:`RowError`
(the message goes to ``dead_letters``); derived values (vwap, average price) are rounded
half-even to 18 places instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from sinks.ddl import Column, ColumnKind, TableSpec

MAX_INTEGER_DIGITS = 20
SCALE = 18
# ASCII digits only: Python's \d also matches other scripts' digits ("٣"), which Decimal accepts
# but the Arrow cast to decimal128 refuses (those go through Decimal and come out as ASCII)
PLAIN_DECIMAL_PATTERN = r"-?[0-9]{1,20}(?:\.[0-9]{1,18})?"
_PLAIN_DECIMAL = re.compile(PLAIN_DECIMAL_PATTERN)
_QUANTUM = Decimal(1).scaleb(-SCALE)
_MISSING = object()

Row = tuple[Any, ...]


class RowError(ValueError):
    """A record that cannot become a row of its table (the sink dead-letters it)."""

    retriable = False


def decimal_string(value: str, derived: bool = False) -> str:
    """Return ``value`` as a plain decimal string that ``Decimal(38, 18)`` holds exactly.

    Raise :class:`RowError` for non-numbers, more than 20 integer digits, or (unless ``derived``)
    more than 18 significant decimal places.
    """
    if _PLAIN_DECIMAL.fullmatch(value):
        return value
    try:
        number = Decimal(value.strip())
    except (InvalidOperation, AttributeError):
        raise RowError(f"not a decimal: {value!r}") from None
    if not number.is_finite():
        raise RowError(f"not a finite decimal: {value!r}")
    fitted = number.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN) if number.as_tuple().exponent < -SCALE else number
    if fitted != number and not derived:
        raise RowError(f"{value!r} has more than {SCALE} decimal places; Decimal(38, 18) would round it")
    if fitted.adjusted() >= MAX_INTEGER_DIGITS:
        raise RowError(f"{value!r} has more than {MAX_INTEGER_DIGITS} integer digits")
    return format(fitted, "f")


def _decimal(column: Column) -> Callable[[Any], Any]:
    derived = column.kind == ColumnKind.DERIVED_DECIMAL

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise RowError(f"{column.name}: expected a decimal string, got {type(value).__name__}")
        return decimal_string(value, derived)

    return convert


def _time(column: Column) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value is None or isinstance(value, int):
            return value
        raise RowError(f"{column.name}: expected ns since epoch, got {type(value).__name__}")

    return convert


def _levels(column: Column) -> Callable[[Any], Any]:
    members = column.members
    decimal_members = {name for name, kind in members if kind in (ColumnKind.DECIMAL, ColumnKind.DERIVED_DECIMAL)}

    def convert(value: Any) -> Any:
        try:
            return [
                {name: decimal_string(item[name]) if name in decimal_members else item[name] for name, _ in members}
                for item in value
            ]
        except (KeyError, TypeError) as exc:
            raise RowError(f"{column.name}: malformed item: {exc}") from None

    return convert


_CONVERTERS: dict[str, Callable[[Column], Callable[[Any], Any]]] = {
    ColumnKind.DECIMAL: _decimal,
    ColumnKind.DERIVED_DECIMAL: _decimal,
    ColumnKind.TIME: _time,
    ColumnKind.LEVELS: _levels,
}


class RowMapper:
    """Turn records of one table into rows in :attr:`TableSpec.column_names` order."""

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self._fields = [(c.name, _CONVERTERS[c.kind](c) if c.kind in _CONVERTERS else None,
                         c.nullable, _python_default(c)) for c in spec.columns]

    def row(self, record: dict[str, Any], topic: str, partition: int, offset: int) -> Row:
        """Return the row for ``record`` read at ``topic``/``partition``/``offset``; raise :class:`RowError`."""
        values: list[Any] = []
        append = values.append
        for name, convert, nullable, default in self._fields:
            value = record.get(name, default)
            if value is _MISSING or (value is None and not nullable):
                raise RowError(f"{self.spec.record}.{name} is missing")
            append(convert(value) if convert is not None else value)
        values += (topic, partition, offset)
        return tuple(values)


def _python_default(column: Column) -> Any:
    return _MISSING if column.default is None else column.avro_default
