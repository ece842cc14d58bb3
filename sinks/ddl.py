"""Archive tables derived from the Avro schemas: one ReplacingMergeTree table per topic.

The ``.avsc`` files stay the single source of truth; this module maps each record field to a
typed ClickHouse column and renders the ``CREATE TABLE`` statements kept in ``sinks/ddl/*.sql``
(regenerate them with ``python -m sinks.ddl``; a unit test fails when they are stale).

Type mapping (why):

* decimal strings (prices, sizes, volumes, fees) -> ``Decimal(38, 18)``: every venue string
  (``0.00000001``, ``123456789.12345678``) round-trips exactly; no binary float ever sees it;
* ``*ns since epoch*`` longs and ``ts_*`` fields -> ``DateTime64(9, 'UTC')``;
* venue, symbol, enums and other small vocabularies -> ``LowCardinality(String)`` (not ``Enum8``:
  a new enum symbol then needs no migration);
* arrays of records (book levels) -> ``Array(Tuple(name type, ...))``;
* ``["null", X]`` unions -> ``Nullable(X)``.

Every table also has ``_topic``, ``_topic_id``, ``_partition``, ``_offset`` and ``_ingested_at``.
The engine is ``ReplacingMergeTree ORDER BY (_topic_id, _partition, _offset)``: a redelivered
message has the same topic id, partition and offset, so it collapses at merge time and never shows
under ``FINAL`` (the ``v_*`` views). ``_topic_id`` is the broker's topic UUID: a recreated topic
(the local broker forgets everything on restart) starts again at offset 0, and its messages must
not collapse with, or be skipped as, the archived messages of the topic's previous life. No ``PARTITION BY``: every insert then writes exactly one part, which is atomic; the
sink's resume logic relies on that. ``non_replicated_deduplication_window`` makes the engine honour
``insert_deduplication_token`` so a retried batch is dropped whole, in the views' targets too.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.registry import raw_schema
from schemas.topics import RECORD_OF_TOPIC, Topic

DDL_DIR = Path(__file__).parent / "ddl"
DECIMAL = "Decimal(38, 18)"
TIME = "DateTime64(9, 'UTC')"
DEDUP_WINDOW = 10_000
DEAD_LETTERS = "dead_letters"

# String fields holding numbers as exact decimal strings. Listed by name because the schema docs
# do not all say so (OrderEvent.filled_qty, avg_price).
DECIMAL_FIELDS = frozenset({
    "price", "qty", "bid_price", "bid_qty", "ask_price", "ask_qty", "open", "high", "low", "close",
    "volume", "quote_volume", "vwap", "fee", "target", "reference_price", "filled_qty", "avg_price",
    "value_quote", "tick_size", "lot_size", "mid", "bps_vs_mid",
})
# Decimal fields computed by a stage (division, weighting): rounded half-even to 18 places
# instead of rejected when longer. Venue strings must fit exactly.
DERIVED_DECIMAL_FIELDS = frozenset({
    "vwap", "avg_price", "reference_price", "quote_volume", "value_quote", "mid", "bps_vs_mid",
})
LOW_CARDINALITY_FIELDS = frozenset({
    "venue", "symbol", "interval", "model", "order_type", "time_in_force", "fee_asset", "liquidity",
    "stage", "source_topic", "connection_id", "account", "trading_state",
})
META_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_topic", "LowCardinality(String)"),
    ("_topic_id", "LowCardinality(String)"),
    ("_partition", "Int32"),
    ("_offset", "Int64"),
    ("_ingested_at", f"{TIME} DEFAULT now64(9)"),
)
_PRIMITIVES = {"long": "Int64", "int": "Int32", "double": "Float64", "float": "Float32", "boolean": "Bool",
               "string": "String"}


class ColumnKind:
    """How :mod:`sinks.rows` converts a field's Avro value into the column's value."""

    PLAIN = "plain"
    DECIMAL = "decimal"
    DERIVED_DECIMAL = "derived_decimal"
    TIME = "time"
    LEVELS = "levels"  # array of records with decimal members
    BYTES = "bytes"


@dataclass(frozen=True)
class Column:
    """One typed column fed from one record field."""

    name: str
    type: str
    kind: str
    nullable: bool = False
    default: str | None = None
    members: tuple[tuple[str, str], ...] = ()  # LEVELS: (member name, member kind)
    avro_default: Any = None  # the value an older writer's record implies (only when default is set)

    def definition(self) -> str:
        """Return ``name type [DEFAULT expr]`` as used in CREATE and ALTER."""
        text = f"`{self.name}` {self.type}"
        return f"{text} DEFAULT {self.default}" if self.default is not None else text


@dataclass(frozen=True)
class TableSpec:
    """One archive table: its name, the topic and record it holds, and its record columns."""

    name: str
    topic: str
    record: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        """Record columns then ``_topic``, ``_partition``, ``_offset``: the row layout of :mod:`sinks.rows`."""
        return tuple(c.name for c in self.columns) + ("_topic", "_partition", "_offset")

    @property
    def insert_columns(self) -> tuple[str, ...]:
        """:attr:`column_names` plus ``_topic_id`` (constant per insert): the writer's insert order."""
        return (*self.column_names, "_topic_id")

    def create_sql(self) -> str:
        """Return the idempotent ``CREATE TABLE IF NOT EXISTS`` statement."""
        lines = [c.definition() for c in self.columns] + [f"`{n}` {t}" for n, t in META_COLUMNS]
        if any(c.name == "ts_event" for c in self.columns):
            lines.append("INDEX ts_event_minmax ts_event TYPE minmax GRANULARITY 4")
        body = ",\n    ".join(lines)
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name}\n(\n    {body}\n)\n"
            f"ENGINE = ReplacingMergeTree\nORDER BY (_topic_id, _partition, _offset)\n"
            f"SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}\n"
        )


def table_name(topic: str) -> str:
    """Return the archive table of ``topic``: ``md.trades`` -> ``md_trades``."""
    return topic.replace(".", "_")


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if value == []:
        return "[]"
    raise ValueError(f"no SQL literal for Avro default {value!r}")


class _SchemaWalker:
    """Resolve Avro types (including named references) to ClickHouse columns."""

    def __init__(self) -> None:
        self._named: dict[str, Any] = {}

    def _register(self, avro: Any, namespace: str) -> None:
        if isinstance(avro, dict):
            if avro.get("type") in ("record", "enum", "fixed"):
                full = avro["name"] if "." in avro["name"] else f"{avro.get('namespace', namespace)}.{avro['name']}"
                self._named[full] = avro
                self._named[avro["name"]] = avro
                for field in avro.get("fields", ()):
                    self._register(field["type"], avro.get("namespace", namespace))
            elif avro.get("type") == "array":
                self._register(avro["items"], namespace)
        elif isinstance(avro, list):
            for branch in avro:
                self._register(branch, namespace)

    def _resolve(self, avro: Any) -> Any:
        return self._named.get(avro, avro) if isinstance(avro, str) else avro

    def record_columns(self, schema: dict[str, Any]) -> tuple[Column, ...]:
        self._register(schema, schema.get("namespace", ""))
        return tuple(self._column(f) for f in schema["fields"])

    def _column(self, field: dict[str, Any]) -> Column:
        name, avro = field["name"], self._resolve(field["type"])
        nullable = isinstance(avro, list) and "null" in avro
        if isinstance(avro, list):
            others = [self._resolve(b) for b in avro if b != "null"]
            if len(others) != 1:
                raise ValueError(f"field {name}: only [null, X] unions are supported, got {avro!r}")
            avro = others[0]
        ch_type, kind, members = self._type(name, field.get("doc", ""), avro)
        if nullable:
            ch_type = ("LowCardinality(Nullable(String))" if ch_type == "LowCardinality(String)"
                       else f"Nullable({ch_type})")
        default = _sql_literal(field["default"]) if "default" in field else None
        if default is not None and kind in (ColumnKind.DECIMAL, ColumnKind.DERIVED_DECIMAL) and default != "NULL":
            default = f"toDecimal128({default}, 18)"
        return Column(name, ch_type, kind, nullable, default, members, field.get("default"))

    def _type(self, name: str, doc: str, avro: Any) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        if isinstance(avro, dict) and avro["type"] == "enum":
            return "LowCardinality(String)", ColumnKind.PLAIN, ()
        if isinstance(avro, dict) and avro["type"] == "array":
            item = self._resolve(avro["items"])
            if isinstance(item, dict) and item["type"] == "record":
                parts, members = [], []
                for sub in item["fields"]:
                    sub_type, sub_kind, _ = self._type(sub["name"], sub.get("doc", ""), self._resolve(sub["type"]))
                    parts.append(f"{sub['name']} {sub_type}")
                    members.append((sub["name"], sub_kind))
                return f"Array(Tuple({', '.join(parts)}))", ColumnKind.LEVELS, tuple(members)
            item_type, _, _ = self._type(name, doc, item)
            return f"Array({item_type})", ColumnKind.PLAIN, ()
        if isinstance(avro, dict):
            avro = avro["type"]
        if avro == "string" and name in DECIMAL_FIELDS:
            kind = ColumnKind.DERIVED_DECIMAL if name in DERIVED_DECIMAL_FIELDS else ColumnKind.DECIMAL
            return DECIMAL, kind, ()
        if avro == "long" and (name.startswith("ts_") or "ns since epoch" in doc):
            return TIME, ColumnKind.TIME, ()
        if avro == "string" and name in LOW_CARDINALITY_FIELDS:
            return "LowCardinality(String)", ColumnKind.PLAIN, ()
        if avro == "bytes":
            return "String", ColumnKind.BYTES, ()
        if avro in _PRIMITIVES:
            return _PRIMITIVES[avro], ColumnKind.PLAIN, ()
        raise ValueError(f"field {name}: unsupported Avro type {avro!r}")


def table_spec(topic: str, schema: dict[str, Any] | None = None) -> TableSpec:
    """Return the archive table of ``topic`` derived from its record's schema (or ``schema``, an older version)."""
    record = RECORD_OF_TOPIC[Topic(topic)]
    return TableSpec(table_name(topic), topic, record, _SchemaWalker().record_columns(schema or raw_schema(record)))


def all_table_specs() -> tuple[TableSpec, ...]:
    """Return every topic's archive table, in topic order."""
    return tuple(table_spec(t.value) for t in Topic)


DEAD_LETTERS_SQL = f"""CREATE TABLE IF NOT EXISTS {DEAD_LETTERS}
(
    `topic` LowCardinality(String),
    `topic_id` LowCardinality(String),
    `partition` Int32,
    `offset` Int64,
    `raw` String,
    `error` String,
    `_ingested_at` {TIME} DEFAULT now64(9)
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, topic_id, partition, offset)
SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}
"""
DEAD_LETTER_COLUMNS = ("topic", "partition", "offset", "raw", "error", "topic_id")


def ddl_files() -> dict[str, str]:
    """Return ``{file name: SQL}`` for ``sinks/ddl/``: one file per table."""
    files = {f"{spec.name}.sql": spec.create_sql() for spec in all_table_specs()}
    files[f"{DEAD_LETTERS}.sql"] = DEAD_LETTERS_SQL
    return files


def write_ddl_files(directory: Path = DDL_DIR) -> list[Path]:
    """Write :func:`ddl_files` into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, sql in ddl_files().items():
        path = directory / name
        path.write_text(f"-- generated by `python -m sinks.ddl` from schemas/avro; do not edit\n{sql}")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_ddl_files():
        sys.stdout.write(f"{written}\n")
