"""Hypothesis strategies built generically from an Avro schema (the .avsc files), so every record
type, and every field added later, is covered without a hand-written generator per record."""

from __future__ import annotations

from typing import Any

import fastavro
from hypothesis import strategies as st

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)

# Decimal strings the way venues send them (fixed 8 places, trailing zeros kept), the edge cases the
# issue names, and other shapes a string field must carry unchanged (exponent, sign, no fraction).
DECIMAL_EDGE_CASES = ("0.00000001", "123456789.12345678", "0.10000000", "0", "0.00000000", "1E-8", "-0.5")
DECIMAL_STRINGS = st.one_of(
    st.sampled_from(DECIMAL_EDGE_CASES),
    st.from_regex(r"\A(0|[1-9][0-9]{0,11})\.[0-9]{8}\Z"),
    st.from_regex(r"\A-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,18})?\Z"),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)


def record_strategy(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Return a strategy of records valid for the (raw, .avsc-style) record ``schema``."""
    return _strategy(fastavro.parse_schema(schema, expand=True, _write_hint=False), decimal=False)


def _strategy(schema: Any, decimal: bool) -> st.SearchStrategy[Any]:
    if isinstance(schema, list):
        return st.one_of(*(_strategy(branch, decimal) for branch in schema))
    kind = schema["type"] if isinstance(schema, dict) else schema
    if kind == "record":
        return st.fixed_dictionaries(
            {f["name"]: _strategy(f["type"], "decimal" in f.get("doc", "")) for f in schema["fields"]}
        )
    primitives: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": INT32,
        "long": INT64,
        # NaN never equals itself; infinities and signed zeros do round-trip and are kept
        "float": st.floats(allow_nan=False, width=32),
        "double": st.floats(allow_nan=False),
        "bytes": st.binary(max_size=64),
        "string": DECIMAL_STRINGS if decimal else st.text(max_size=40),
    }
    if kind in primitives:
        return primitives[kind]
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(_strategy(schema["items"], decimal), max_size=25)
    if kind == "map":
        return st.dictionaries(st.text(max_size=10), _strategy(schema["values"], decimal), max_size=5)
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    raise NotImplementedError(f"no strategy for Avro type {kind!r}")
