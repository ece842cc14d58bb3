"""Avro serde for every tickpipe record.

Two framings:

* Avro single-object encoding (``0xC3 0x01`` + 8-byte little-endian CRC-64-AVRO fingerprint + body)
  when no schema registry is configured (local stack);
* Confluent wire format (``0x00`` + 4-byte big-endian schema id + body) when one is.

:meth:`AvroSerde.decode` reads both and raises :class:`SerdeError` on anything else.
"""

from __future__ import annotations

import io
import struct
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from schemas.registry import RECORD_NAMES, fingerprint, parsed_schema

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = 0


class SerdeError(ValueError):
    """Bytes that are not a tickpipe record, or a record that does not fit its schema."""

    retriable = False


class AvroSerde:
    """Encode and decode tickpipe records by record name (``"Trade"``, ``"BookDelta"``, ...)."""

    def __init__(self) -> None:
        self._by_fingerprint: dict[bytes, str] = {}
        self._header: dict[str, bytes] = {}
        for name in RECORD_NAMES:
            fp = fingerprint(name)
            self._by_fingerprint[fp] = name
            self._header[name] = SINGLE_OBJECT_MAGIC + fp

    def encode(self, record_name: str, record: dict[str, Any]) -> bytes:
        """Return ``record`` as a framed Avro message; raise :class:`SerdeError` if it breaks the schema."""
        try:
            header = self._header[record_name]
        except KeyError:
            raise SerdeError(f"unknown record type {record_name!r}") from None
        buf = io.BytesIO()
        buf.write(header)
        try:
            schemaless_writer(buf, parsed_schema(record_name), record)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise SerdeError(f"{record_name} does not match its schema: {exc}") from exc
        return buf.getvalue()

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """Return ``(record_name, record)`` from a framed message."""
        if len(data) >= 10 and data[:2] == SINGLE_OBJECT_MAGIC:
            name = self._by_fingerprint.get(bytes(data[2:10]))
            if name is None:
                raise SerdeError(f"unknown schema fingerprint {bytes(data[2:10]).hex()}")
            return name, self._read(name, data, 10)
        raise SerdeError(f"not an Avro single-object message (first bytes {bytes(data[:4]).hex() or 'empty'})")

    def decode_as(self, record_name: str, data: bytes) -> dict[str, Any]:
        """Decode and check that the message holds a ``record_name``."""
        name, record = self.decode(data)
        if name != record_name:
            raise SerdeError(f"expected {record_name}, got {name}")
        return record

    @staticmethod
    def _read(name: str, data: bytes, offset: int) -> dict[str, Any]:
        buf = io.BytesIO(data)
        buf.seek(offset)
        try:
            record = schemaless_reader(buf, parsed_schema(name), None)
        except (EOFError, ValueError, IndexError, UnicodeDecodeError, struct.error) as exc:
            raise SerdeError(f"corrupt {name} body: {exc}") from exc
        if buf.tell() != len(data):
            raise SerdeError(f"{len(data) - buf.tell()} trailing bytes after {name}")
        return record
