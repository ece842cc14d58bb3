"""Avro serde for every tickpipe record.

Two framings (:mod:`schemas.framing`):

* Avro single-object encoding (``0xC3 0x01`` + CRC-64-AVRO fingerprint + body) when no schema
  registry is configured (local stack);
* Confluent wire format (``0x00`` + 4-byte big-endian schema id + body) when one is, with the schema
  registered under the subject ``<topic>-value`` (Confluent's default TopicNameStrategy).

Bodies are encoded by :mod:`schemas.avro_body` (cavro, compiled per schema, plus a writer for arrays
of string records: 1.5-2.5x fastavro's ``schemaless_writer`` on the feed's hot records, byte-identical,
see ``bench/serde.py`` and ``tests/unit/schemas/test_serde.py``; fastavro where cavro has no wheel);
decoding stays with fastavro.

:meth:`AvroSerde.decode` reads both, whatever the serde writes, and raises :class:`SerdeError` on
anything else. Messages written with an older schema (a released snapshot in
``schemas/avro/released/`` or an older registry version) are resolved to the current schema by Avro
schema resolution, so consumers always see today's record shape.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

import fastavro
from fastavro import schemaless_reader
from fastavro.schema import fingerprint as avro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from schemas.avro_body import body_encoder, cavro
from schemas.compat import backward_problems
from schemas.confluent import ConfluentRegistry, SchemaRegistryUnavailable
from schemas.framing import (
    CONFLUENT_MAGIC,
    SINGLE_OBJECT_HEADER_LEN,
    SINGLE_OBJECT_MAGIC,
    Framing,
    SerdeError,
    confluent_header,
    parse_header,
    single_object_header,
)
from schemas.registry import (
    RECORD_NAMES,
    canonical_form,
    fingerprint,
    parsed_schema,
    raw_schema,
    released_raw_schema,
    released_versions,
)
from schemas.topics import RECORD_OF_TOPIC

if TYPE_CHECKING:
    from infra.settings import KafkaSettings

__all__ = [
    "CONFLUENT_MAGIC",
    "SINGLE_OBJECT_MAGIC",
    "AvroSerde",
    "SchemaRegistryUnavailable",
    "SerdeError",
]

# cavro raises InvalidValue (a ValueError) for a wrong type or range, KeyError for an unknown enum symbol
_WRITE_ERRORS: tuple[type[Exception], ...] = (TypeError, ValueError, KeyError, AttributeError, OverflowError) + (
    (cavro.CavroException,) if cavro is not None else ()
)
_READ_ERRORS = (
    EOFError,
    ValueError,
    IndexError,
    KeyError,
    UnicodeDecodeError,
    OverflowError,
    struct.error,
    MemoryError,
)


class _Writer(NamedTuple):
    header: bytes
    body: Callable[[Any], bytes]  # the record's schemaless Avro body


class _Reader(NamedTuple):
    name: str
    writer_schema: Any
    reader_schema: Any  # None when the writer schema is the current one (no resolution needed)


def _default_topics() -> dict[str, str | None]:
    # a record carried by one topic may omit the topic; Bar (bars.1s and bars.1m) may not
    topics: dict[str, str | None] = {}
    for topic, name in RECORD_OF_TOPIC.items():
        topics[name] = None if name in topics else str(topic)
    return topics


def _as_bytes(data: object) -> bytes:
    # Kafka hands over bytes, or None for a tombstone; accept any buffer, refuse the rest clearly
    if data is None:
        raise SerdeError("no message value (a Kafka tombstone?): expected a framed Avro record")
    try:
        return bytes(data)  # type: ignore[call-overload]
    except TypeError:
        raise SerdeError(f"expected bytes, got {type(data).__name__}") from None


def _older_reader(record_name: str, schema: dict[str, Any]) -> tuple[bytes, _Reader]:
    parsed = fastavro.parse_schema(schema)
    fp = bytes.fromhex(avro_fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
    if fp == fingerprint(record_name):
        return fp, _Reader(record_name, parsed_schema(record_name), None)
    problems = backward_problems(schema, raw_schema(record_name))
    if problems:
        raise SerdeError(f"current {record_name} cannot read data of that schema: {'; '.join(problems)}")
    return fp, _Reader(record_name, parsed, parsed_schema(record_name))


@cache
def _body_encoder(record_name: str) -> Callable[[Any], bytes]:
    return body_encoder(raw_schema(record_name))  # compiled once per process


@cache
def _released_readers() -> dict[bytes, _Reader]:
    # parsed once per process: every serde decodes data written with any released schema
    readers: dict[bytes, _Reader] = {}
    for version in released_versions():
        for name in RECORD_NAMES:
            try:
                released = released_raw_schema(version, name)
            except KeyError:
                continue
            fp, reader = _older_reader(name, released)
            readers.setdefault(fp, reader)
    return readers


class AvroSerde:
    """Encode and decode tickpipe records by record name (``"Trade"``, ``"BookDelta"``, ...).

    ``AvroSerde()`` writes single-object encoding; ``AvroSerde(registry=ConfluentRegistry(url))`` (or
    :meth:`from_settings` with ``schema_registry_url`` set) writes the Confluent wire format. Safe to
    share between threads: the caches only ever gain entries.
    """

    def __init__(self, registry: ConfluentRegistry | None = None) -> None:
        self._registry = registry
        self._writers: dict[str, _Writer] = {}
        self._confluent_writers: dict[tuple[str, str], _Writer] = {}
        self._by_fingerprint: dict[bytes, _Reader] = {}
        self._by_schema_id: dict[int, _Reader] = {}
        self._default_topic = _default_topics()
        self._record_of_topic = {str(topic): name for topic, name in RECORD_OF_TOPIC.items()}
        for name in RECORD_NAMES:
            schema = parsed_schema(name)
            fp = fingerprint(name)
            self._writers[name] = _Writer(single_object_header(fp), _body_encoder(name))
            self._by_fingerprint[fp] = _Reader(name, schema, None)
        for fp, reader in _released_readers().items():
            self._by_fingerprint.setdefault(fp, reader)

    @classmethod
    def from_settings(cls, kafka: KafkaSettings) -> AvroSerde:
        """Return the serde the deployment asks for: Confluent framing iff ``schema_registry_url`` is set."""
        if kafka.schema_registry_url:
            return cls(registry=ConfluentRegistry(kafka.schema_registry_url))
        return cls()

    @property
    def framing(self) -> Framing:
        """The framing :meth:`encode` writes."""
        return Framing.SINGLE_OBJECT if self._registry is None else Framing.CONFLUENT

    def encode(self, record_name: str, record: dict[str, Any], topic: str | None = None) -> bytes:
        """Return ``record`` as a framed Avro message; raise :class:`SerdeError` if it breaks the schema.

        ``topic`` names the registry subject (``<topic>-value``) in Confluent mode; it may be omitted for
        records that travel on a single topic and is ignored for single-object encoding.
        """
        if self._registry is None:
            writer = self._writers.get(record_name)
            if writer is None:
                raise SerdeError(f"unknown record type {record_name!r}; known: {', '.join(RECORD_NAMES)}")
        else:
            writer = self._confluent_writers.get((record_name, topic or ""))
            if writer is None:
                writer = self._register(record_name, topic)
        try:
            return writer.header + writer.body(record)
        except _WRITE_ERRORS as exc:
            detail = f"{exc.args[0]!r} is not a symbol of its enum" if type(exc) is KeyError else str(exc)
            raise SerdeError(f"{record_name} does not match its schema: {detail}") from exc

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """Return ``(record_name, record)`` from a message in either framing."""
        if type(data) is not bytes:
            data = _as_bytes(data)
        # fast path: a known fingerprint or an already-resolved schema id, no header object built
        reader = self._by_fingerprint.get(data[2:10]) if data[:2] == SINGLE_OBJECT_MAGIC else None
        offset = SINGLE_OBJECT_HEADER_LEN
        if reader is None:
            reader, offset = self._reader_of(data)
        buf = io.BytesIO(data)
        buf.seek(offset)
        try:
            # a record schema always reads a dict; no cast() call on the hot path
            record: dict[str, Any] = schemaless_reader(  # type: ignore[assignment]
                buf, reader.writer_schema, reader.reader_schema
            )
        except _READ_ERRORS as exc:
            raise SerdeError(f"corrupt {reader.name} body: {exc!r}") from exc
        if buf.tell() != len(data):
            raise SerdeError(f"{len(data) - buf.tell()} trailing bytes after {reader.name}")
        return reader.name, record

    def decode_as(self, record_name: str, data: bytes) -> dict[str, Any]:
        """Decode and check that the message holds a ``record_name``."""
        name, record = self.decode(data)
        if name != record_name:
            raise SerdeError(f"expected {record_name}, got {name}")
        return record

    def close(self) -> None:
        """Release the registry connection, if any."""
        if self._registry is not None:
            self._registry.close()

    def accept_writer_schema(self, record_name: str, schema: dict[str, Any]) -> None:
        """Also decode single-object messages written with an older ``schema`` of ``record_name``.

        Such messages are resolved to the current schema (new fields get their defaults). Raise
        :class:`SerdeError` when the current schema cannot read that data (:mod:`schemas.compat`).
        """
        if record_name not in self._writers:
            raise SerdeError(f"unknown record type {record_name!r}; known: {', '.join(RECORD_NAMES)}")
        fp, reader = _older_reader(record_name, schema)
        self._by_fingerprint.setdefault(fp, reader)

    def _reader_of(self, data: bytes) -> tuple[_Reader, int]:
        # slow path: parse the header for a clear error, or resolve a schema id not seen yet
        key, offset = parse_header(data)[1:]
        if isinstance(key, bytes):
            raise SerdeError(
                f"unknown schema fingerprint {key.hex()}: not a current or released tickpipe schema"
            )
        reader = self._by_schema_id.get(key)
        if reader is None:
            reader = self._resolve_schema_id(key)
        return reader, offset

    def _register(self, record_name: str, topic: str | None) -> _Writer:
        assert self._registry is not None
        if record_name not in self._writers:
            raise SerdeError(f"unknown record type {record_name!r}; known: {', '.join(RECORD_NAMES)}")
        expected = self._record_of_topic.get(topic) if topic else None
        if expected is not None and expected != record_name:
            raise SerdeError(f"topic {topic} carries {expected}, not {record_name}")
        subject_topic = topic or self._default_topic.get(record_name)
        if not subject_topic:
            raise SerdeError(
                f"{record_name} travels on several topics: pass topic= to name its registry subject"
            )
        schema_id = self._registry.register(f"{subject_topic}-value", json.dumps(raw_schema(record_name)))
        writer = _Writer(confluent_header(schema_id), _body_encoder(record_name))
        self._confluent_writers[(record_name, topic or "")] = writer
        self._by_schema_id.setdefault(schema_id, _Reader(record_name, parsed_schema(record_name), None))
        return writer

    def _resolve_schema_id(self, schema_id: int) -> _Reader:
        if self._registry is None:
            raise SerdeError(
                f"Confluent-framed message (schema id {schema_id}) but no schema registry is configured "
                "(set TICKPIPE_KAFKA__SCHEMA_REGISTRY_URL)"
            )
        text = self._registry.schema_str(schema_id)
        try:
            writer_schema = fastavro.parse_schema(json.loads(text))
        except (ValueError, TypeError, KeyError, fastavro.schema.SchemaParseException) as exc:
            raise SerdeError(f"schema id {schema_id} is not a valid Avro schema: {exc}") from exc
        full_name = writer_schema.get("name", "") if isinstance(writer_schema, dict) else ""
        name = full_name.rsplit(".", 1)[-1]
        if name not in self._writers:
            raise SerdeError(f"schema id {schema_id} is {full_name or 'unnamed'!r}, not a tickpipe record")
        same = to_parsing_canonical_form(writer_schema) == canonical_form(name)
        reader = _Reader(name, writer_schema, None if same else parsed_schema(name))
        self._by_schema_id[schema_id] = reader
        return reader
