"""Signal records: deterministic ids and the mapping from a model's Decision to a Signal dict."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from schemas.decimals import decimal_text
from streams.models.base import Decision, InputRef


def signal_id(model: str, inputs: Iterable[InputRef]) -> str:
    """Return a hash of the model name and the inputs' (topic, partition, offset), order-independent.

    Processing the same input records again (replay, restart after a crash, a second worker taking
    over the partition) therefore yields the same id, which downstream uses to drop duplicates.
    """
    text = model + "|" + "|".join(f"{r.topic}:{r.partition}:{r.offset}" for r in sorted(set(inputs)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def signal_record(
    decision: Decision, model: str, venue: str, symbol: str, target_qty: str, ttl_ns: int, ts_emit: int
) -> dict[str, Any]:
    """Return the Signal record (Signal.avsc) for ``decision``.

    ``expires_at`` counts from the input's local receive time, so it is also the same on replay.
    """
    return {
        "signal_id": signal_id(model, decision.inputs),
        "venue": venue,
        "symbol": symbol,
        "side": decision.side,
        "strength": decision.strength,
        "target": target_qty,
        "urgency": decision.urgency,
        "model": model,
        "expires_at": decision.ts_recv + ttl_ns,
        "reference_price": decimal_text(Decimal(repr(decision.reference_price))),
        "inputs": [{"topic": r.topic, "partition": r.partition, "offset": r.offset} for r in decision.inputs],
        "ts_event": decision.ts_event,
        "ts_recv": decision.ts_recv,
        "ts_emit": ts_emit,
        "backtest_id": "",  # the live pipeline; a backtest stamps its own id on the record it writes
    }
