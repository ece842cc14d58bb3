"""Decode a run of Avro single-object messages of one flat record type straight into Arrow arrays.

Why: fastavro builds one dict per message (~4-5 µs for a Trade) and the sink then maps, batches
and transposes those dicts into columns (~4.5 µs more). Here numpy walks every message of a poll
at once, field by field (varints, strings, enums, ``["null", X]`` unions, doubles, booleans) and
the string bytes are gathered into Arrow buffers without a Python object per value.

This is only a fast path: a message it cannot vouch for (another fingerprint or framing, a body
that does not end exactly where its last field does, a varint longer than 10 bytes, an enum or
union index out of range, an int out of range, a boolean byte other than 0/1, a string that is not
UTF-8) is flagged, and the
sink hands that message to :class:`schemas.serde.AvroSerde` as before, so dead letters and their
errors stay exactly what they were. Records with arrays or nested records are not supported
(:func:`columnar_decoder` returns ``None``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from schemas.framing import SINGLE_OBJECT_HEADER_LEN, SINGLE_OBJECT_MAGIC
from schemas.registry import fingerprint, raw_schema

_PAD = 16  # zero bytes after the joined bodies: a varint read never leaves the buffer
_MAX_VARINT_BYTES = 10
_PRIMITIVES = frozenset({"string", "bytes", "long", "int", "boolean", "double", "float"})
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class ColumnarUnsupported(ValueError):
    """A chunk the fast path refuses as a whole (e.g. a string that is not UTF-8): use the slow path."""


@dataclass(frozen=True)
class _Field:
    name: str
    kind: str  # one of _PRIMITIVES or "enum"
    nullable: bool
    symbols: tuple[str, ...] = ()


def _plan(schema: dict[str, Any]) -> tuple[_Field, ...] | None:
    fields = []
    for field in schema["fields"]:
        avro, nullable = field["type"], False
        if isinstance(avro, list):
            if len(avro) != 2 or avro[0] != "null":
                return None
            avro, nullable = avro[1], True
        if isinstance(avro, dict) and avro.get("type") == "enum":
            fields.append(_Field(field["name"], "enum", nullable, tuple(avro["symbols"])))
        elif isinstance(avro, dict) and avro.get("type") in _PRIMITIVES and len(avro) == 1:
            fields.append(_Field(field["name"], avro["type"], nullable))
        elif isinstance(avro, str) and avro in _PRIMITIVES:
            fields.append(_Field(field["name"], avro, nullable))
        else:
            return None  # arrays, nested records, named references: fastavro's job
    return tuple(fields)


def _varint(buf: np.ndarray, pos: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (zigzag-decoded int64 values, bytes used) of the varints at ``pos``; clear ``ok`` on overlong ones."""
    first = buf[pos]
    raw = (first & 0x7F).astype(np.uint64)
    used = np.ones(len(pos), np.int64)
    idx = np.flatnonzero(first & 0x80)
    for k in range(1, _MAX_VARINT_BYTES):
        if not len(idx):
            break
        byte = buf[pos[idx] + k]
        raw[idx] |= (byte & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        used[idx] += 1
        idx = idx[(byte & 0x80) != 0]
    ok[idx] = False  # still continuing after 10 bytes
    values = (raw >> np.uint64(1)).view(np.int64) ^ -(raw & np.uint64(1)).view(np.int64)
    return values, used


def _gather(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (Arrow int32 offsets, contiguous bytes) of the slices ``buf[starts[i]:starts[i]+lengths[i]]``."""
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    if total >= 2**31:
        raise ColumnarUnsupported("string column over 2 GiB in one poll")
    index = np.repeat(starts - offsets[:-1], lengths) + np.arange(total, dtype=np.int64)
    return offsets.astype(np.int32), buf[index]


def _utf8_array(buf: np.ndarray, first: np.ndarray, lengths: np.ndarray, valid: np.ndarray | None,
                ok: np.ndarray) -> pa.Array:
    # Arrow checks UTF-8 for the whole array at once; only when that fails are the values looked at
    # one by one, to flag (and blank) just the messages fastavro would refuse
    offsets, data = _gather(buf, first, lengths)
    array = pa.Array.from_buffers(pa.string(), len(lengths), [_validity(valid), pa.py_buffer(offsets),
                                                              pa.py_buffer(data)])
    try:
        array.validate(full=True)
        return array
    except pa.ArrowInvalid:
        pass
    raw = data.tobytes()
    bad = [i for i in np.flatnonzero(lengths) if not _is_utf8(raw[offsets[i]:offsets[i + 1]])]
    ok[bad] = False
    lengths = lengths.copy()
    lengths[bad] = 0
    return _utf8_array(buf, first, lengths, valid, ok)


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _validity(valid: np.ndarray | None) -> pa.Buffer | None:
    return None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))


class ColumnarDecoder:
    """Decode single-object messages of one record (current schema only) into Arrow arrays."""

    def __init__(self, record: str, fields: tuple[_Field, ...]) -> None:
        self.record = record
        self._fields = fields
        self._header = np.frombuffer(SINGLE_OBJECT_MAGIC + fingerprint(record), np.uint8)

    def decode(self, values: Sequence[bytes]) -> tuple[dict[str, pa.Array], np.ndarray]:
        """Return ``(arrays by field name, ok)`` for ``values``; only rows where ``ok`` is True are valid.

        Raise :class:`ColumnarUnsupported` when the chunk as a whole cannot be decoded here.
        """
        count = len(values)
        lengths = np.fromiter(map(len, values), np.int64, count)
        ends = np.cumsum(lengths)
        starts = ends - lengths
        buf = np.frombuffer(b"".join(values) + bytes(_PAD), np.uint8)
        head = buf[starts[:, None] + np.arange(SINGLE_OBJECT_HEADER_LEN)]
        ok = (lengths >= SINGLE_OBJECT_HEADER_LEN) & (head == self._header).all(axis=1)
        pos = np.minimum(starts + SINGLE_OBJECT_HEADER_LEN, ends)
        arrays: dict[str, pa.Array] = {}
        for field in self._fields:
            rows = np.arange(count)
            valid = None
            if field.nullable:
                branch, used = _varint(buf, pos, ok)
                ok &= ((branch == 0) | (branch == 1)) & (pos + used <= ends)
                pos = np.minimum(pos + used, ends)
                valid = ok & (branch == 1)
                rows = np.flatnonzero(valid)
            arrays[field.name] = self._field(field, buf, pos, ends, ok, rows, valid, count)
        ok &= pos == ends
        return arrays, ok

    def _field(self, field: _Field, buf: np.ndarray, pos: np.ndarray, ends: np.ndarray, ok: np.ndarray,
               rows: np.ndarray, valid: np.ndarray | None, count: int) -> pa.Array:
        # decodes the field at pos[rows], advances pos in place, clears ok for rows that break a rule
        at = pos[rows]
        sub_ok = ok[rows]
        kind = field.kind
        if kind in ("string", "bytes"):
            length, used = _varint(buf, at, sub_ok)
            begin = np.minimum(at + used, ends[rows])
            sub_ok &= (length >= 0) & (length <= ends[rows] - (at + used))  # no overflow near 2**63
            length = np.where(sub_ok, length, 0)
            full = np.zeros(count, np.int64)
            full[rows] = length
            first = np.zeros(count, np.int64)
            first[rows] = begin
            pos[rows] = begin + length
            ok[rows] = sub_ok
            if kind == "bytes":
                offsets, data = _gather(buf, first, full)
                return pa.Array.from_buffers(pa.binary(), count, [_validity(valid), pa.py_buffer(offsets),
                                                                  pa.py_buffer(data)])
            return _utf8_array(buf, first, full, valid, ok)
        if kind in ("double", "float", "boolean"):
            width = {"double": 8, "float": 4, "boolean": 1}[kind]
            sub_ok &= at + width <= ends[rows]
            raw = buf[np.minimum(at, len(buf) - _PAD)[:, None] + np.arange(width)]
            if kind == "boolean":
                byte = raw[:, 0]
                sub_ok &= byte <= 1
                decoded: np.ndarray = byte.astype(bool)
            else:
                decoded = np.ascontiguousarray(raw).view("<f8" if kind == "double" else "<f4").ravel()
            pos[rows] = np.minimum(at + width, ends[rows])
        else:
            decoded, used = _varint(buf, at, sub_ok)
            sub_ok &= at + used <= ends[rows]
            pos[rows] = np.minimum(at + used, ends[rows])
            if kind == "int":
                sub_ok &= (decoded >= _INT32_MIN) & (decoded <= _INT32_MAX)
                decoded = np.where(sub_ok, decoded, 0).astype(np.int32)
            elif kind == "enum":
                sub_ok &= (decoded >= 0) & (decoded < len(field.symbols))
                decoded = np.where(sub_ok, decoded, 0).astype(np.int32)
        ok[rows] = sub_ok
        full_values = np.zeros(count, decoded.dtype)
        full_values[rows] = decoded
        mask = None if valid is None else ~valid
        if kind == "enum":
            indices = pa.array(full_values, pa.int32(), mask=mask)
            return pa.DictionaryArray.from_arrays(indices, pa.array(field.symbols, pa.string())).cast(pa.string())
        return pa.array(full_values, mask=mask)


def columnar_decoder(record: str) -> ColumnarDecoder | None:
    """Return the fast decoder of ``record``, or ``None`` when its schema has fields it does not handle."""
    fields = _plan(raw_schema(record))
    return None if fields is None else ColumnarDecoder(record, fields)
