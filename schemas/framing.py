"""The two message framings around an Avro body, as pure byte functions.

* Avro single-object encoding: ``0xC3 0x01`` + 8-byte CRC-64-AVRO fingerprint (little-endian) + body.
  Self-describing without a registry: the fingerprint names the writer schema (local stack).
* Confluent wire format: ``0x00`` + 4-byte big-endian schema id + body. The id is only meaningful to
  the Schema Registry that issued it (cluster deployments).

No I/O here: :mod:`schemas.serde` maps fingerprints and ids to schemas.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
SINGLE_OBJECT_HEADER_LEN = 10
CONFLUENT_MAGIC = 0
CONFLUENT_HEADER_LEN = 5
MAX_SCHEMA_ID = 2**31 - 1


class SerdeError(ValueError):
    """Bytes that are not a tickpipe record, or a record that does not fit its schema.

    Not retriable: the same bytes fail the same way again, so consumers dead-letter them.
    """

    retriable = False


class Framing(Enum):
    """Which header a message carries."""

    SINGLE_OBJECT = "single-object"
    CONFLUENT = "confluent"


class Header(NamedTuple):
    """A parsed header: the framing, the writer-schema key, and where the Avro body starts."""

    framing: Framing
    key: bytes | int  # fingerprint (single-object) or schema id (Confluent)
    body_offset: int


def single_object_header(fingerprint: bytes) -> bytes:
    """Return the single-object header for an 8-byte CRC-64-AVRO fingerprint."""
    if len(fingerprint) != 8:
        raise ValueError(f"a CRC-64-AVRO fingerprint has 8 bytes, got {len(fingerprint)}")
    return SINGLE_OBJECT_MAGIC + fingerprint


def confluent_header(schema_id: int) -> bytes:
    """Return the Confluent wire-format header for a registry schema id."""
    if not 0 <= schema_id <= MAX_SCHEMA_ID:
        raise ValueError(f"schema id {schema_id} outside 0..{MAX_SCHEMA_ID}")
    return bytes((CONFLUENT_MAGIC,)) + schema_id.to_bytes(4, "big")


def parse_header(data: bytes) -> Header:
    """Return the header of ``data``; raise :class:`SerdeError` if it is neither framing."""
    if not data:
        raise SerdeError("empty message: expected an Avro single-object or Confluent-framed record")
    first = data[0]
    if first == 0xC3:
        if len(data) < SINGLE_OBJECT_HEADER_LEN:
            raise SerdeError(
                f"truncated single-object header: {len(data)} bytes, need {SINGLE_OBJECT_HEADER_LEN}"
            )
        if data[1] != 0x01:
            raise SerdeError(f"wrong single-object magic {bytes(data[:2]).hex()}, expected c301")
        return Header(Framing.SINGLE_OBJECT, bytes(data[2:10]), SINGLE_OBJECT_HEADER_LEN)
    if first == CONFLUENT_MAGIC:
        if len(data) < CONFLUENT_HEADER_LEN:
            raise SerdeError(f"truncated Confluent header: {len(data)} bytes, need {CONFLUENT_HEADER_LEN}")
        return Header(Framing.CONFLUENT, int.from_bytes(data[1:5], "big"), CONFLUENT_HEADER_LEN)
    raise SerdeError(
        f"unknown framing (first bytes {bytes(data[:4]).hex()}): "
        "expected Avro single-object (c301) or Confluent wire format (00)"
    )
