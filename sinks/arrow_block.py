"""Pure conversion of a table's rows into one Arrow table, the block the writer inserts.

Arrow rather than clickhouse-connect's row-wise Native encoder: decimal columns are cast from
their validated strings in one vectorised, exact step, and ClickHouse maps ``decimal128(38, 18)``,
``timestamp[ns]`` and ``list<struct>`` straight onto ``Decimal(38, 18)``, ``DateTime64(9)`` and
``Array(Tuple)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sinks.ddl import DEAD_LETTER_COLUMNS, Column, ColumnKind, TableSpec
from sinks.rows import PLAIN_DECIMAL_PATTERN

DECIMAL_TYPE = pa.decimal128(38, 18)
TIME_TYPE = pa.timestamp("ns", tz="UTC")
_PLAIN_TYPES = {"Int64": pa.int64(), "Int32": pa.int32(), "Float64": pa.float64(), "Float32": pa.float32(),
                "Bool": pa.bool_(), "String": pa.string()}
_META_TYPES = (pa.string(), pa.int32(), pa.int64())
_DECIMAL_KINDS = (ColumnKind.DECIMAL, ColumnKind.DERIVED_DECIMAL)
_PLAIN_DECIMAL_ANCHORED = f"^{PLAIN_DECIMAL_PATTERN}$"


def _base_type(ch_type: str) -> str:
    for wrapper in ("LowCardinality(", "Nullable("):
        while ch_type.startswith(wrapper):
            ch_type = ch_type[len(wrapper):-1]
    return ch_type


def _member_type(kind: str, ch_type: str) -> pa.DataType:
    if kind in (ColumnKind.DECIMAL, ColumnKind.DERIVED_DECIMAL):
        return DECIMAL_TYPE
    return _PLAIN_TYPES[_base_type(ch_type)]


def _levels_types(column: Column) -> tuple[pa.DataType, pa.DataType]:
    inner = column.type[len("Array(Tuple("):-2]
    member_types = dict(part.split(" ", 1) for part in _split_top_level(inner))
    loose = pa.list_(pa.struct([(name, pa.string() if kind in (ColumnKind.DECIMAL, ColumnKind.DERIVED_DECIMAL)
                                       else _member_type(kind, member_types[name])) for name, kind in column.members]))
    exact = pa.list_(pa.struct([(name, _member_type(kind, member_types[name])) for name, kind in column.members]))
    return loose, exact


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def column_array(column: Column, values: Sequence[Any]) -> pa.Array:
    """Return ``values`` (converted by :mod:`sinks.rows`) as the Arrow array of ``column``."""
    if column.kind in (ColumnKind.DECIMAL, ColumnKind.DERIVED_DECIMAL):
        return pa.array(values, pa.string()).cast(DECIMAL_TYPE)
    if column.kind == ColumnKind.TIME:
        return pa.array(values, TIME_TYPE)
    if column.kind == ColumnKind.BYTES:
        return pa.array(values, pa.binary())
    if column.kind == ColumnKind.LEVELS:
        loose, exact = _levels_types(column)
        return pa.array(values, loose).cast(exact)
    base = _base_type(column.type)
    return pa.array(values, _PLAIN_TYPES[base]) if base in _PLAIN_TYPES else pa.array(values)


def arrow_table(spec: TableSpec, rows: Sequence[tuple[Any, ...]], topic_id: str,
                decoded: Sequence[pa.Table] = ()) -> pa.Table:
    """Return ``rows`` of ``spec`` and the ``decoded`` blocks as one Arrow table of :attr:`TableSpec.insert_columns`.

    ``decoded`` are tables from :func:`decoded_table` (the column-wise path): already typed, so they
    are only concatenated (no copy) behind the rows.
    """
    parts = list(decoded)
    if rows or not parts:
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(spec.column_names)
        arrays = [column_array(c, columns[i]) for i, c in enumerate(spec.columns)]
        arrays += [pa.array(columns[len(spec.columns) + i], t) for i, t in enumerate(_META_TYPES)]
        parts.insert(0, pa.Table.from_arrays(arrays, names=list(spec.column_names)))
    table = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
    return table.append_column("_topic_id", pa.repeat(pa.scalar(topic_id, pa.string()), table.num_rows))


def plain_decimals(array: pa.Array) -> np.ndarray:
    """Return, per value, whether it is a plain decimal that ``Decimal(38, 18)`` holds exactly (nulls count as plain).

    The vectorised twin of :func:`sinks.rows.decimal_string`'s fast check; values failing it go
    through that function one by one (normalised or dead-lettered).
    """
    matched = pc.match_substring_regex(array, _PLAIN_DECIMAL_ANCHORED)
    return np.asarray(pc.fill_null(matched, True).to_numpy(zero_copy_only=False), dtype=bool)


def decoded_table(spec: TableSpec, fields: Mapping[str, pa.Array], keep: np.ndarray, topic: str,
                  partitions: np.ndarray, offsets: np.ndarray) -> pa.Table:
    """Return the rows ``keep`` of column-wise decoded ``fields`` as a table of :attr:`TableSpec.column_names`.

    Decimal columns must hold plain decimals in the kept rows (see :func:`plain_decimals`), so the
    cast to ``decimal128(38, 18)`` is exact.
    """
    mask = None if keep.all() else pa.array(keep)
    arrays = []
    for column in spec.columns:
        array = fields[column.name]
        if mask is not None:
            array = array.filter(mask)
        arrays.append(_typed(column, array))
    count = int(keep.sum())
    arrays += [pa.repeat(pa.scalar(topic, pa.string()), count),
               pa.array(partitions[keep], pa.int32()), pa.array(offsets[keep], pa.int64())]
    return pa.Table.from_arrays(arrays, names=list(spec.column_names))


def _typed(column: Column, array: pa.Array) -> pa.Array:
    if column.kind in _DECIMAL_KINDS:
        return array.cast(DECIMAL_TYPE)
    if column.kind == ColumnKind.TIME:
        return array.cast(TIME_TYPE)
    if column.kind == ColumnKind.BYTES:
        return array.cast(pa.binary())
    return array.cast(_PLAIN_TYPES[_base_type(column.type)])


def dead_letter_table(rows: Sequence[tuple[str, int, int, bytes, str]], topic_ids: dict[str, str]) -> pa.Table:
    """Return dead-letter rows ``(topic, partition, offset, raw, error)`` as an Arrow table."""
    topic, partition, offset, raw, error = (list(c) for c in zip(*rows, strict=True)) if rows else ([],) * 5
    return pa.Table.from_arrays(
        [pa.array(topic, pa.string()), pa.array(partition, pa.int32()), pa.array(offset, pa.int64()),
         pa.array(raw, pa.binary()), pa.array(error, pa.string()),
         pa.array([topic_ids.get(t, "") for t in topic], pa.string())],
        names=list(DEAD_LETTER_COLUMNS),
    )
