"""One instrument's book pipeline: BookDelta/BBO/FeedEvent in -> BookFeatures and Signal records out.

Staleness has two sources. The book itself goes stale on an update-id gap and stays so until the next
snapshot. ``md.health`` marks it stale on ``stale``/``gap``/``resync``/``crossed`` until ``recovered``
or a snapshot newer (by ``ts_recv``) than the health event; comparing receive times keeps the result
right whichever of the two topics the worker happens to read first. A stale instrument produces no
features and no signals.

A worker that joins mid-stream starts a book from the feed's latest snapshot on md.book.snapshots
(:meth:`BookInstrument.seed`) and reads md.book from a little before it: the deltas that snapshot
already holds are skipped as covered, not dead-lettered as out of order, and the first delta past it
continues the book under the usual update-id rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from infra.settings import StreamsSettings
from orderbook import Applied, Gap, NotSynced, OutOfOrder, SequencedBook
from streams.features.book import BookFeatureValues, book_features, features_with_top, new_book
from streams.models import DEFAULT_MODEL, MODELS
from streams.models.base import BookObservation, InputRef, SignalModel
from streams.signals import signal_record

STALE_KINDS = frozenset({"stale", "gap", "resync", "crossed"})


@dataclass(frozen=True)
class BookConfig:
    """What the book pipeline needs from the settings."""

    model: SignalModel
    features_interval_ns: int
    target_qty: str
    signal_ttl_ns: int
    max_levels: int = 0  # levels kept a side (0: all)


def book_config(s: StreamsSettings, model: str = DEFAULT_MODEL) -> BookConfig:
    """The pipeline config (``model`` by name, throttle, signal size and lifetime) from the settings."""
    ms = 1_000_000
    return BookConfig(
        model=MODELS[model](s), features_interval_ns=s.book_features_interval_ms * ms,
        target_qty=s.signal_target_qty, signal_ttl_ns=s.signal_ttl_ms * ms, max_levels=s.book_max_levels,
    )


@dataclass
class BookOutcome:
    """Records (without ``ts_emit``) and problems produced by one input."""

    features: dict[str, Any] | None = None
    signal: dict[str, Any] | None = None
    error: str | None = None
    reason: str = "out_of_order"  # dlq reason when ``error`` is set
    note: str | None = None


@dataclass
class BookInstrument:
    """Book, staleness, throttle and model state of one instrument; saved in the ``book-state`` table."""

    book: SequencedBook = field(default_factory=new_book)
    health_stale_since: int | None = None
    snapshot_ts_recv: int = -1
    last_features_ts: int | None = None
    model_state: dict[str, Any] | None = None
    offsets: dict[str, int] = field(default_factory=dict)
    seeded_id: int | None = None
    """Update id of the md.book.snapshots seed while no md.book delta has continued it yet."""

    @property
    def stale(self) -> bool:
        """True while the instrument produces no features."""
        return self.health_stale_since is not None or not self.book.synced

    def seen(self, ref: InputRef) -> bool:
        """True when this input (or a later one of its partition) was already applied (replay after a crash)."""
        return ref.offset <= self.offsets.get(f"{ref.topic}:{ref.partition}", -1)

    def mark(self, ref: InputRef) -> None:
        """Remember ``ref`` as applied."""
        self.offsets[f"{ref.topic}:{ref.partition}"] = ref.offset

    def on_health(self, event: dict[str, Any]) -> None:
        """Apply one FeedEvent of this instrument."""
        if event["kind"] in STALE_KINDS and event["ts_recv"] >= self.snapshot_ts_recv:
            self.health_stale_since = event["ts_recv"]
        elif event["kind"] == "recovered":
            self.health_stale_since = None

    def seed(self, snapshot: dict[str, Any], cfg: BookConfig) -> bool:
        """Start the book from a snapshot of md.book.snapshots, unless the book is synced at it or later.

        Return True when applied. No features and no model step: the seed is where the book starts,
        not an md.book input (signal inputs stay md.book offsets), and the next delta gives features.
        """
        last = snapshot["last_update_id"]
        if self.book.synced and last <= self.book.last_update_id:
            return False
        self.book.apply_record(snapshot, cfg.max_levels)
        self._took_snapshot(snapshot["ts_recv"])
        self.seeded_id = last
        return True

    def on_delta(self, delta: dict[str, Any], ref: InputRef, cfg: BookConfig) -> BookOutcome:
        """Apply one BookDelta; return the features and signal it causes, or why it caused none."""
        result = self.book.apply_record(delta, cfg.max_levels)
        if isinstance(result, OutOfOrder):
            if self.seeded_id is not None and delta["last_update_id"] <= self.seeded_id:
                return BookOutcome(note="covered by seed snapshot")
            return BookOutcome(error=f"out-of-order book update: {result.reason}")
        if isinstance(result, Gap):
            self.seeded_id = None
            return BookOutcome(note=f"gap: {result.reason}")
        if isinstance(result, NotSynced):
            return BookOutcome(note="waiting for snapshot")
        assert isinstance(result, Applied)
        if delta["snapshot"]:
            self._took_snapshot(delta["ts_recv"])
        else:
            self.seeded_id = None
        if self.health_stale_since is not None:
            return BookOutcome(note="stale")
        values = book_features(self.book)
        if values is None:
            return BookOutcome(note="crossed or one-sided book")
        ts = delta["ts_event"]
        out = BookOutcome(features=self._features(delta, delta["last_update_id"], values, cfg))
        if self.model_state is None:
            self.model_state = cfg.model.new_state()
        top = values.top
        obs = BookObservation(
            bid=top.bid, bid_qty=top.bid_qty, ask=top.ask, ask_qty=top.ask_qty, mid=values.mid,
            microprice=values.microprice, spread=values.spread, imbalance_5=values.imbalance_5,
            ts_event=ts, ts_recv=delta["ts_recv"], source=ref,
        )
        decision = cfg.model.observe(self.model_state, obs)
        if decision is not None:
            out.signal = signal_record(
                decision, cfg.model.name, delta["venue"], delta["symbol"], cfg.target_qty, cfg.signal_ttl_ns, 0
            )
        return out

    def _took_snapshot(self, ts_recv: int) -> None:
        # a snapshot received after a stale health event resynced the book
        self.snapshot_ts_recv = ts_recv
        if self.health_stale_since is not None and self.health_stale_since <= ts_recv:
            self.health_stale_since = None

    def on_bbo(self, bbo: dict[str, Any], cfg: BookConfig) -> BookOutcome:
        """Apply one BBO: features of the book under a best bid/offer newer than its last update.

        Binance's bookTicker arrives between the 100 ms depth updates, so the top of book moves
        before the book does. A BBO no newer than the book adds nothing (the book holds it). BBOs
        drive no signal: the model stays on book updates, whose inputs are one partition of one
        topic, so signal ids never depend on how md.bbo and md.book interleave.
        """
        if self.stale:
            return BookOutcome(note="stale")
        if bbo["update_id"] <= self.book.last_update_id:
            return BookOutcome(note="bbo not newer than book")
        values = features_with_top(
            self.book, Decimal(bbo["bid_price"]), Decimal(bbo["bid_qty"]), Decimal(bbo["ask_price"]), Decimal(bbo["ask_qty"])
        )
        if values is None:
            return BookOutcome(note="crossed or one-sided book")
        return BookOutcome(features=self._features(bbo, bbo["update_id"], values, cfg))

    def _features(
        self, record: dict[str, Any], update_id: int, values: BookFeatureValues, cfg: BookConfig
    ) -> dict[str, Any] | None:
        # the BookFeatures record, or None while the throttle holds
        ts = record["ts_event"]
        if (
            cfg.features_interval_ns
            and self.last_features_ts is not None
            and ts - self.last_features_ts < cfg.features_interval_ns
        ):
            return None
        self.last_features_ts = ts
        return {
            "venue": record["venue"], "symbol": record["symbol"], "update_id": update_id,
            **values.as_record_fields(), "ts_event": ts, "ts_recv": record["ts_recv"],
        }

    def to_state(self) -> dict[str, Any]:
        """JSON-able form for the changelog."""
        return {
            "book": self.book.to_state(), "health_stale_since": self.health_stale_since,
            "snapshot_ts_recv": self.snapshot_ts_recv, "last_features_ts": self.last_features_ts,
            "model_state": self.model_state, "offsets": self.offsets, "seeded_id": self.seeded_id,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> BookInstrument:
        """Inverse of :meth:`to_state`."""
        return cls(
            book=SequencedBook.from_state(s["book"], float_view=True), health_stale_since=s["health_stale_since"],
            snapshot_ts_recv=s["snapshot_ts_recv"], last_features_ts=s["last_features_ts"],
            model_state=s["model_state"], offsets=s["offsets"], seeded_id=s.get("seeded_id"),
        )
