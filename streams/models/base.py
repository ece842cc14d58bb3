"""The interface every signal model implements, and the values that cross it.

A model is a pure object: it sees one :class:`BookObservation` at a time together with its own
per-instrument state, and returns the new state and maybe a :class:`Decision`. It touches no clock
and no Kafka, so the same observations in the same order give the same decisions; the agent
persists the state in a Faust table between calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, order=True)
class InputRef:
    """Kafka position of one input record."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class BookObservation:
    """What a model sees after each book update of one instrument."""

    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    mid: float
    microprice: float
    spread: float
    imbalance_5: float
    ts_event: int
    ts_recv: int
    source: InputRef


@dataclass(frozen=True)
class Decision:
    """A model's wish to trade; the agent turns it into a Signal record."""

    side: str
    strength: float
    urgency: float
    reference_price: float
    inputs: tuple[InputRef, ...]
    ts_event: int
    ts_recv: int


class SignalModel(Protocol):
    """A signal model: name (with version), state handling, and one decision step."""

    name: str

    def new_state(self) -> dict[str, Any]:
        """Return the state of an instrument never seen before (JSON-able)."""
        ...

    def observe(self, state: dict[str, Any], obs: BookObservation) -> Decision | None:
        """Update ``state`` in place with ``obs``; return a decision or None."""
        ...
