"""schemas.records mirrors the .avsc files: same field names, in order, with matching types."""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import fastavro
import pytest

from schemas import records
from schemas.registry import RECORD_NAMES, raw_schema

PRIMITIVES = {
    "string": str,
    "long": int,
    "int": int,
    "double": float,
    "float": float,
    "boolean": bool,
    "bytes": bytes,
}


def _matches(avro: Any, hint: Any) -> bool:
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        args = get_args(hint)
        if get_origin(hint) not in (Union, types.UnionType) or (type(None) in args) != ("null" in avro):
            return len(avro) == 1 and _matches(avro[0], hint)
        rest = [a for a in args if a is not type(None)]
        return len(rest) == len(branches) and all(_matches(b, a) for b, a in zip(branches, rest, strict=True))
    kind = avro["type"] if isinstance(avro, dict) else avro
    if kind in PRIMITIVES:
        return hint is PRIMITIVES[kind]
    if kind == "enum":
        return get_origin(hint) is Literal and list(get_args(hint)) == avro["symbols"]
    if kind == "array":
        return get_origin(hint) is list and _matches(avro["items"], get_args(hint)[0])
    if kind == "record":
        return _record_matches(avro, hint)
    return False


def _record_matches(avro: dict[str, Any], typed: Any) -> bool:
    hints = get_type_hints(typed)
    return (
        typed.__name__ == avro["name"].rsplit(".", 1)[-1]
        and [f["name"] for f in avro["fields"]] == list(hints)
        and all(_matches(f["type"], hints[f["name"]]) for f in avro["fields"])
    )


@pytest.mark.parametrize("name", RECORD_NAMES)
def test_typed_dict_keys_equal_the_avsc_field_names_in_order(name: str) -> None:
    typed = getattr(records, name)
    assert list(get_type_hints(typed)) == [f["name"] for f in raw_schema(name)["fields"]]
    assert typed.__required_keys__ == frozenset(f["name"] for f in raw_schema(name)["fields"])


@pytest.mark.parametrize("name", RECORD_NAMES)
def test_typed_dict_types_match_the_avsc_types(name: str) -> None:
    expanded = fastavro.parse_schema(raw_schema(name), expand=True, _write_hint=False)
    assert _record_matches(expanded, getattr(records, name))


def test_the_type_comparison_notices_a_mismatch() -> None:
    # the checker itself must be able to fail: a long field typed str, a missing null branch
    assert not _matches("long", str)
    assert not _matches(["null", "string"], str)
    assert not _matches({"type": "enum", "name": "Side", "symbols": ["buy"]}, records.Side)
