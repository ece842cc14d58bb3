"""Decode and check one input message: the boundary where bad input becomes a DeadLetter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.decimals import is_plain_unsigned
from schemas.serde import AvroSerde, SerdeError
from schemas.topics import instrument_key


@dataclass(frozen=True)
class Accepted:
    """A decoded record of the expected type for a known instrument."""

    record_name: str
    record: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    """Why an input was refused, ready to become a DeadLetter."""

    reason: str
    error: str
    venue: str = ""
    symbol: str = ""
    ts_event: int | None = None


def check_input(
    serde: AvroSerde,
    key: bytes | None,
    value: bytes | None,
    expected: str,
    allowed: frozenset[bytes],
    venue_wide_ok: bool = False,
) -> Accepted | Rejected:
    """Decode ``value`` as ``expected`` and check its instrument against the key and ``allowed`` (empty = any).

    ``venue_wide_ok`` accepts records with an empty symbol (feed-level health events, key ``"binance:"``).
    """
    try:
        record = serde.decode_as(expected, value or b"")
    except SerdeError as exc:
        return Rejected("undecodable", str(exc))
    venue, symbol = record.get("venue", ""), record.get("symbol", "")
    ts = record.get("ts_event")
    own_key = instrument_key(venue, symbol)
    if key is not None and key != own_key:
        return Rejected("unknown_instrument", f"key {key!r} does not match record instrument {own_key!r}", venue, symbol, ts)
    if allowed and own_key not in allowed and not (venue_wide_ok and symbol == ""):
        return Rejected("unknown_instrument", f"instrument {own_key.decode()} is not configured", venue, symbol, ts)
    problem = invalid_numbers(expected, record)
    if problem:
        return Rejected("invalid_record", problem, venue, symbol, ts)
    return Accepted(expected, record)


def invalid_numbers(record_name: str, record: dict[str, Any]) -> str | None:
    """Return why a Trade's, BookDelta's or BBO's decimal strings are unusable (not plain, price <= 0, qty < 0)."""
    if record_name == "Trade":
        pairs = [(record["price"], record["qty"])]
    elif record_name == "BookDelta":
        pairs = [(lv["price"], lv["qty"]) for lv in (*record["bids"], *record["asks"])]
    elif record_name == "BBO":
        pairs = [(record["bid_price"], record["bid_qty"]), (record["ask_price"], record["ask_qty"])]
    else:
        return None
    for price, qty in pairs:
        if not (is_plain_unsigned(price) and is_plain_unsigned(qty)):
            return f"not a plain decimal string: price {price!r}, qty {qty!r}"
        # plain unsigned text is finite and >= 0; it is zero when it has no digit but 0 (no Decimal needed)
        if not price.strip("0.") or (record_name == "Trade" and not qty.strip("0.")):
            return f"unusable price {price!r} or qty {qty!r}"
    return None


def dead_letter(
    rejected_reason: str, venue: str, symbol: str, topic: str, partition: int, offset: int,
    raw: bytes, ts_event: int | None, ts_recv: int,
) -> dict[str, Any]:
    """Return the DeadLetter record for an input the streams stage refused."""
    return {
        "venue": venue, "symbol": symbol, "stage": "streams", "source_topic": topic,
        "partition": partition, "offset": offset, "raw": raw, "error": rejected_reason,
        "ts_event": ts_event if ts_event is not None else ts_recv, "ts_recv": ts_recv,
    }


def parse_instruments(text: str) -> frozenset[bytes]:
    """Parse the ``instruments`` setting (``"binance:BTCUSDT,binance:ETHUSDT"``) into message keys."""
    return frozenset(item.strip().encode() for item in text.split(",") if item.strip())
