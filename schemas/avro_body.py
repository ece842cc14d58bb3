"""Schemaless Avro bodies: one compiled encoder per record schema.

cavro (Cython) encodes a record 1.3-1.9x faster than fastavro's ``schemaless_writer``, byte for
byte the same. One shape it is slow at: arrays of small all-string records (BookDelta's price
levels, 50-100 per depth update), ~0.8 us per level, because every string goes through a typed
memoryview. Those arrays are written here instead (~0.3 us per level); the fields around them stay
with cavro, encoded as consecutive partial records. An Avro record body is its fields' encodings
concatenated, so the result is the same bytes (checked against fastavro by a property test).

cavro 1.0.0 ships wheels for CPython 3.11 and 3.12 only; on a newer Python it is not installed
(an environment marker in pyproject.toml) and fastavro's ``schemaless_writer`` writes the same
bytes, about half as fast and with fastavro's laxer checks (a float in a long field is truncated).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import fastavro

try:
    import cavro
except ImportError:  # no wheel for this Python: see the module docstring
    cavro = None

Encoder = Callable[[Any], bytes]

_SMALL_LENGTHS = [bytes((2 * n,)) for n in range(64)]  # zigzag varint of 0..63: one byte


def _varint(n: int) -> bytes:
    # zigzag varint of a non-negative long (already doubled by the caller)
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _cavro(schema: dict[str, Any]) -> Encoder:
    # dicts only (no cavro Record objects), extra keys ignored, missing keys take the schema
    # default: what fastavro's schemaless_writer does
    return cavro.Schema(schema, record_can_encode_dict=True, record_allow_extra_fields=True,
                        record_encode_use_defaults=True).binary_encode


def _string_record_fields(field: dict[str, Any], named: dict[str, list[str]]) -> list[str] | None:
    # the item field names of an array-of-all-string-records field without default, else None
    kind = field["type"]
    if not isinstance(kind, dict) or kind.get("type") != "array" or "default" in field:
        return None
    items = kind["items"]
    if isinstance(items, str):
        return named.get(items)
    if isinstance(items, dict) and items.get("type") == "record" and all(f["type"] == "string" for f in items["fields"]):
        named[items["name"]] = [f["name"] for f in items["fields"]]
        return named[items["name"]]
    return None


def _string_records_writer(name: str, fields: list[str]) -> Encoder:
    where = [f"{name}.{f}" for f in fields]
    pairs = list(zip(fields, where, strict=True))

    def write(record: Any) -> bytes:
        items = record.get(name)
        if type(items) is not list and type(items) is not tuple:
            if items is None and name not in record:
                raise ValueError(f"required field '{name}' missing")
            raise TypeError(f"Invalid value {items!r} for type array at {name}")
        if not items:
            return b"\x00"
        parts = [_varint(2 * len(items))]
        append = parts.append
        for item in items:
            if not isinstance(item, dict):
                raise TypeError(f"Invalid value {item!r} for type record at {name}")
            for field, at in pairs:
                text = item.get(field)
                if type(text) is not str:
                    raise TypeError(f"Invalid value {text!r} for type string at {at}")
                data = text.encode()
                size = len(data)
                append(_SMALL_LENGTHS[size] if size < 64 else _varint(2 * size))
                append(data)
        append(b"\x00")
        return b"".join(parts)

    return write


def _fastavro(schema: dict[str, Any]) -> Encoder:
    parsed = fastavro.parse_schema(schema)

    def encode(record: Any) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, record)
        return out.getvalue()

    return encode


def body_encoder(schema: dict[str, Any]) -> Encoder:
    """Return ``encode(record_dict) -> bytes`` for the (raw, .avsc) record ``schema``."""
    if cavro is None:
        return _fastavro(schema)
    named: dict[str, list[str]] = {}
    parts: list[Encoder] = []
    run: list[dict[str, Any]] = []
    for field in schema["fields"]:
        string_fields = _string_record_fields(field, named)
        if string_fields is None:
            run.append(field)
            continue
        if run:
            parts.append(_cavro({**schema, "name": f"{schema['name']}Part{len(parts)}", "fields": run}))
            run = []
        parts.append(_string_records_writer(field["name"], string_fields))
    if not named:
        return _cavro(schema)
    if run:
        parts.append(_cavro({**schema, "name": f"{schema['name']}Part{len(parts)}", "fields": run}))

    def encode(record: Any) -> bytes:
        if not isinstance(record, dict):
            raise TypeError(f"Invalid value {record!r} for type record at {schema['name']}")
        return b"".join([part(record) for part in parts])

    return encode
