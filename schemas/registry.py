"""Load the ``.avsc`` files: the single source of truth for every record."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint as avro_fingerprint
from fastavro.schema import to_parsing_canonical_form

AVRO_DIR = Path(__file__).parent / "avro"
RELEASED_DIR = AVRO_DIR / "released"

RECORD_NAMES: tuple[str, ...] = (
    "Trade",
    "BookDelta",
    "BBO",
    "FeedEvent",
    "Instrument",
    "BookFeatures",
    "FlowFeatures",
    "CrossVenueBBO",
    "Bar",
    "Signal",
    "OrderEvent",
    "Fill",
    "ExecutorEvent",
    "DeadLetter",
)


@cache
def raw_schema(name: str) -> dict[str, Any]:
    """Return the JSON of ``schemas/avro/<name>.avsc``."""
    if name not in RECORD_NAMES:
        raise KeyError(f"unknown record {name!r}; known: {', '.join(RECORD_NAMES)}")
    return json.loads((AVRO_DIR / f"{name}.avsc").read_text())


@cache
def parsed_schema(name: str) -> Any:
    """Return the fastavro-parsed schema of record ``name``."""
    return fastavro.parse_schema(raw_schema(name))


@cache
def canonical_form(name: str) -> str:
    """Return the Parsing Canonical Form of record ``name``."""
    return to_parsing_canonical_form(parsed_schema(name))


@cache
def fingerprint(name: str) -> bytes:
    """Return the 8-byte CRC-64-AVRO fingerprint of record ``name`` as single-object encoding stores it."""
    return bytes.fromhex(avro_fingerprint(canonical_form(name), "CRC-64-AVRO"))


def released_versions() -> tuple[str, ...]:
    """Return the released schema snapshots (``schemas/avro/released/<version>/``), oldest first."""
    return tuple(
        sorted((p.name for p in RELEASED_DIR.iterdir() if p.is_dir()), key=lambda v: int(v.lstrip("v")))
    )


@cache
def released_raw_schema(version: str, name: str) -> dict[str, Any]:
    """Return the JSON of record ``name`` as released in ``version``; KeyError if it was not released then."""
    path = RELEASED_DIR / version / f"{name}.avsc"
    if not path.is_file():
        raise KeyError(f"{name} was not part of release {version}")
    return json.loads(path.read_text())
