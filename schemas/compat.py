"""Backward-compatibility check between two versions of a record schema.

tickpipe's rule (stricter than bare Avro resolution, so that consumers never see a value change type):
a reader with the new schema must read data written with the old one, where

* every field added since has a default;
* every existing field keeps its exact type (no promotions, no wrapping into a union);
* enums may gain symbols, unions may gain branches, fields may be removed;
* a removed enum symbol needs an enum default to fall back to.

Nested records, arrays, maps and union branches are checked recursively. The test suite runs this
against every released snapshot in ``schemas/avro/released/``; fastavro's schema resolution then
proves the result on generated data.
"""

from __future__ import annotations

from typing import Any

import fastavro

_NAMED = ("record", "enum", "fixed")


def backward_problems(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Return why data written with ``old`` cannot be read unchanged with ``new`` (empty: compatible)."""
    problems: list[str] = []
    _compare(_expand(old), _expand(new), _short(new.get("name", "?")), problems)
    return problems


def _expand(schema: dict[str, Any]) -> Any:
    # expand=True inlines every named-type reference, so comparisons never chase names
    return fastavro.parse_schema(schema, expand=True, _write_hint=False)


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        kind = schema["type"]
        logical = schema.get("logicalType")
        return f"{kind}:{logical}" if logical else str(kind)
    return str(schema)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _describe(schema: Any) -> str:
    kind = _kind(schema)
    if isinstance(schema, dict) and kind in _NAMED:
        return f"{kind} {_short(schema['name'])}"
    if kind == "union":
        return "[" + ", ".join(_describe(branch) for branch in schema) + "]"
    return kind


def _signature(schema: Any) -> str:
    kind = _kind(schema)
    if isinstance(schema, dict) and kind in _NAMED:
        return f"{kind} {_short(schema['name'])}"
    return kind


def _compare(old: Any, new: Any, path: str, problems: list[str]) -> None:
    kind = _kind(old)
    if kind != _kind(new) or _signature(old) != _signature(new):
        problems.append(f"{path}: type changed from {_describe(old)} to {_describe(new)}")
        return
    if kind == "record":
        _compare_records(old, new, path, problems)
    elif kind == "enum":
        removed = [s for s in old["symbols"] if s not in new["symbols"]]
        if removed and "default" not in new:
            problems.append(f"{path}: enum symbols {removed} removed and the enum has no default")
    elif kind == "fixed":
        if old["size"] != new["size"]:
            problems.append(f"{path}: fixed size changed from {old['size']} to {new['size']}")
    elif kind == "array":
        _compare(old["items"], new["items"], f"{path}[]", problems)
    elif kind == "map":
        _compare(old["values"], new["values"], f"{path}{{}}", problems)
    elif kind == "union":
        new_branches = {_signature(branch): branch for branch in new}
        for branch in old:
            match = new_branches.get(_signature(branch))
            if match is None:
                problems.append(f"{path}: union branch {_describe(branch)} removed")
            else:
                _compare(branch, match, f"{path}<{_signature(branch)}>", problems)


def _compare_records(old: dict[str, Any], new: dict[str, Any], path: str, problems: list[str]) -> None:
    old_fields = {field["name"]: field for field in old["fields"]}
    for field in new["fields"]:
        names = [field["name"], *field.get("aliases", [])]
        previous = next((old_fields[n] for n in names if n in old_fields), None)
        field_path = f"{path}.{field['name']}"
        if previous is None:
            if "default" not in field:
                problems.append(f"{field_path}: field added without a default")
        else:
            _compare(previous["type"], field["type"], field_path, problems)
