"""Reconciliation with the venue: at start-up, and balances against fills every few seconds.

Start-up (docs/execution.md): positions are rebuilt from the ``fills`` topic (:func:`rebuild_positions`:
every Fill of this executor's account up to the end offsets read at start, deduplicated by
(venue, symbol, trade_id), net of base-asset fees); then our open orders are read and canceled (their
signals are uncommitted, so they are replayed and the replay adopts the canceled orders and continues
with the next attempt), and balances are read as the account baseline, with the local time of that read
(:attr:`Reconciliation.balances_at_ns`) so that a trade published later can be placed before or after it.

Periodic (:func:`balance_check`, pure): the venue's balances should equal the baseline plus what the
fills applied since (``Positions.asset_delta``); whatever differs (a trade placed behind the
executor's back, a lost fill) is the difference, valued in quote units at mid.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from confluent_kafka.admin import AdminClient

from executor.commands import Side
from executor.ids import parse_client_order_id
from executor.positions import Positions
from executor.venue import BinanceVenue, NotFound
from infra.topics import iter_to_end
from schemas.serde import AvroSerde, SerdeError
from schemas.topics import Topic

log = logging.getLogger(__name__)


@dataclass
class Reconciliation:
    """What start-up reconciliation found and did."""

    canceled: list[str] = field(default_factory=list)
    foreign_open_orders: int = 0
    balances: dict[str, Decimal] = field(default_factory=dict)
    balances_at_ns: int = 0  # local time halfway through the balances request


def reconcile(venue: BinanceVenue, clock: Callable[[], int]) -> Reconciliation:
    """Cancel our open orders, then read balances (the baseline) and when they were read."""
    report = Reconciliation()
    for order in venue.open_orders():
        cid = order.get("clientOrderId", "")
        if parse_client_order_id(cid) is None:
            report.foreign_open_orders += 1
            continue
        try:
            venue.cancel(order["symbol"], cid)
        except NotFound:
            pass  # filled or canceled in between: the replay's query sees its final state
        report.canceled.append(cid)
    before = clock()
    report.balances = venue.balances()
    report.balances_at_ns = (before + clock()) // 2
    log.info(
        "reconciled with venue",
        extra={"canceled": len(report.canceled), "foreign_open_orders": report.foreign_open_orders,
               "assets": len(report.balances)},
    )
    return report


class FillsReplay:
    """Applies Fill records read back from ``fills`` to positions: this account's, once per trade (pure).

    Every record gets an outcome, counted in :attr:`counts`: ``applied``; ``duplicate`` (the same
    (venue, symbol, trade_id) again: a Fill re-published by a replay); ``other_account``; ``no_account``
    (written before Fill carried an account: whose it was cannot be told, so it is not claimed);
    ``other_venue``; ``malformed`` (a value that is no decimal or side).
    """

    def __init__(self, positions: Positions, venue: str, account: str) -> None:
        self.positions, self.venue, self.account = positions, venue, account
        self.counts: Counter[str] = Counter()

    def add(self, fill: dict[str, Any]) -> str:
        """Apply one decoded Fill if it is this account's and new; return and count its outcome."""
        outcome = self._outcome(fill)
        self.counts[outcome] += 1
        return outcome

    def _outcome(self, fill: dict[str, Any]) -> str:
        if fill["venue"] != self.venue:
            return "other_venue"
        if not fill["account"]:
            return "no_account"
        if fill["account"] != self.account:
            return "other_account"
        try:
            side, price, qty, fee = Side(fill["side"]), Decimal(fill["price"]), Decimal(fill["qty"]), Decimal(fill["fee"])
        except (ValueError, InvalidOperation):
            return "malformed"
        if not all(x.is_finite() for x in (price, qty, fee)):
            return "malformed"
        applied = self.positions.apply_fill(fill["symbol"], fill["trade_id"], side, price, qty, fee, fill["fee_asset"],
                                            fill["ts_event"] // 1_000_000)
        return "applied" if applied else "duplicate"


FILLS_READ_TIMEOUT_S = 300.0  # the start-up read of `fills` (kept forever) must reach its end offsets by then


def rebuild_positions(bootstrap: str, serde: AvroSerde, replay: FillsReplay) -> FillsReplay:
    """Read ``fills`` from its beginning to the end offsets at the call into ``replay``; log what was found.

    Undecodable records are counted (``undecodable``) and logged with their position, never skipped unseen.
    """
    topic = Topic.FILLS.value
    meta = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:  # else positions would be silently flat
        raise RuntimeError(f"cannot rebuild positions: topic {topic} unavailable ({meta.error if meta else 'missing'})")
    for msg in iter_to_end(bootstrap, topic, FILLS_READ_TIMEOUT_S):
        try:
            fill = serde.decode_as("Fill", msg.value() or b"")
        except SerdeError as exc:
            replay.counts["undecodable"] += 1
            log.error("undecodable Fill at start; not in positions", extra={
                "partition": msg.partition(), "offset": msg.offset(), "error": str(exc)})
            continue
        if replay.add(fill) == "malformed":
            log.error("malformed Fill at start; not in positions", extra={
                "partition": msg.partition(), "offset": msg.offset(), "fill": fill})
    counts = dict(replay.counts)
    if counts.get("no_account"):
        log.warning("Fills without an account (written before Fill carried one) are not in the positions",
                    extra={"count": counts["no_account"]})
    log.info("positions rebuilt from fills", extra={"account": replay.account, "outcomes": counts,
                                                    "positions": {s: str(replay.positions.get(s).qty)
                                                                  for s in replay.positions.symbols()}})
    return replay


@dataclass(frozen=True)
class BalanceCheck:
    """Venue balance minus expected balance per asset (non-zero only), and its worth in quote units."""

    diff: dict[str, Decimal]
    value: Decimal
    unpriced: tuple[str, ...] = ()


def balance_check(
    baseline: dict[str, Decimal], delta: dict[str, Decimal], venue: dict[str, Decimal], prices: dict[str, Decimal]
) -> BalanceCheck:
    """Compare the venue's balances with ``baseline + delta``; value the difference with ``prices`` (quote = 1)."""
    zero = Decimal(0)
    diff = {}
    for asset in sorted(set(baseline) | set(delta) | set(venue)):
        d = venue.get(asset, zero) - baseline.get(asset, zero) - delta.get(asset, zero)
        if d:
            diff[asset] = d
    value = sum((abs(d) * prices[a] for a, d in diff.items() if a in prices), zero)
    return BalanceCheck(diff, value, tuple(a for a in diff if a not in prices))
