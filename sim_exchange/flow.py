"""Seeded background order flow: the other traders of the simulated venue.

Each :meth:`BackgroundFlow.step` is one book event (a limit order, a market order or a cancel) on
one symbol, drawn from a single ``random.Random(seed)`` in a fixed sequence. The wall clock only
decides how many steps run per second, never which steps, so the same seed and the same client
actions at the same step give the same event stream.

The model: each symbol has a fair price (in ticks) doing a random walk with a weak pull to the
book's mid. Limit orders land a few ticks either side of fair, mostly near the touch, with sizes
that grow with the distance (depth grows away from the touch). Market orders have Pareto
(heavy-tailed) sizes. Cancels prefer the farther of two random resting orders, which keeps the
book near fair. Bursts are runs of same-side market orders while fair drifts that way; during a
burst :attr:`BackgroundFlow.rate_multiplier` asks the driver to speed up. A liquidity withdrawal
pushes new orders ``extra_ticks`` away, shrinks them and cancels the orders near the touch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from sim_exchange.engine import Engine, OrderRequest, OrderType, Side, TimeInForce
from sim_exchange.symbols import E8, SymbolSpec


@dataclass(frozen=True, slots=True)
class FlowParams:
    """Shape of the background flow (rates are shares of events, not per second)."""

    market_share: float = 0.07
    cancel_share: float = 0.38
    target_resting: int = 400
    near_touch_share: float = 0.3
    half_spread_ticks: float = 1.5
    max_distance_ticks: int = 40
    size_growth_ticks: float = 3.0
    volatility_ticks: float = 0.6
    mean_order_notional: float = 1500.0
    pareto_alpha: float = 1.6
    max_market_multiple: float = 40.0
    burst_start_prob: float = 0.002
    burst_mean_events: int = 40
    burst_rate_multiplier: float = 4.0


@dataclass(slots=True)
class _Resting:
    order_id: int
    side: Side
    price: int


@dataclass(slots=True)
class _Withdrawal:
    extra_ticks: int
    size_factor: float


class _SymbolFlow:
    def __init__(self, spec: SymbolSpec) -> None:
        self.spec = spec
        self.fair = float(spec.start_price_ticks)
        self.mean_lots = max(1.0, spec_lots_for_notional(spec, 1.0))
        self.live: list[_Resting] = []
        self.withdrawal: _Withdrawal | None = None


def spec_lots_for_notional(spec: SymbolSpec, notional: float) -> float:
    """Lots worth ``notional`` quote units at the start price."""
    price = spec.start_price_ticks * spec.tick_e8 / E8
    return notional / price / (spec.step_e8 / E8)


class BackgroundFlow:
    """Drive ``engine`` with seeded random order flow on every symbol (see module docstring)."""

    def __init__(self, engine: Engine, specs: Sequence[SymbolSpec], seed: int, params: FlowParams | None = None):
        self.engine = engine
        self.params = params or FlowParams()
        self.rng = random.Random(seed)
        self.symbols = [_SymbolFlow(spec) for spec in specs]
        for flow in self.symbols:
            flow.mean_lots = max(1.0, spec_lots_for_notional(flow.spec, self.params.mean_order_notional))
        self.steps = 0
        self._burst_left = 0
        self._burst_side = Side.BUY
        self._burst_symbol = 0

    @property
    def rate_multiplier(self) -> float:
        """How much faster than the base rate the driver should step now (bursts)."""
        return self.params.burst_rate_multiplier if self._burst_left > 0 else 1.0

    def set_withdrawal(self, symbol: str | None, extra_ticks: int, size_factor: float) -> None:
        """Start a liquidity withdrawal on ``symbol`` (None = all symbols)."""
        for flow in self.symbols:
            if symbol is None or flow.spec.symbol == symbol:
                flow.withdrawal = _Withdrawal(extra_ticks, size_factor)

    def end_withdrawal(self, symbol: str | None) -> None:
        for flow in self.symbols:
            if symbol is None or flow.spec.symbol == symbol:
                flow.withdrawal = None

    def seed_books(self, orders_per_symbol: int) -> None:
        """Place limit orders only, to give every book depth before trading starts."""
        for _ in range(orders_per_symbol):
            for flow in self.symbols:
                self._place_limit(flow, self.rng.random() < 0.5)
        self.engine.take_events()

    def step(self) -> None:
        """Run one background event."""
        self.steps += 1
        rng, p = self.rng, self.params
        if self._burst_left > 0:
            self._burst_left -= 1
            flow = self.symbols[self._burst_symbol]
        else:
            flow = self.symbols[rng.randrange(len(self.symbols))]
            if rng.random() < p.burst_start_prob:
                self._burst_left = 1 + int(rng.expovariate(1.0 / p.burst_mean_events))
                self._burst_side = Side.BUY if rng.random() < 0.5 else Side.SELL
                self._burst_symbol = self.symbols.index(flow)
        self._move_fair(flow)
        in_burst = self._burst_left > 0 and self.symbols[self._burst_symbol] is flow
        market_share = p.market_share * (4.0 if in_burst else 1.0)
        cancel_share = p.cancel_share * min(3.0, len(flow.live) / p.target_resting)
        if flow.withdrawal is not None and self._nearest_inside(flow) is not None:
            cancel_share = max(cancel_share, 0.5)
        draw = rng.random()
        if draw < market_share:
            side = self._burst_side if in_burst else (Side.BUY if rng.random() < 0.5 else Side.SELL)
            self._place_market(flow, side)
        elif draw < market_share + cancel_share and flow.live:
            self._cancel_one(flow)
        else:
            self._place_limit(flow, rng.random() < 0.5)

    # ------------------------------------------------------------------ model
    def _move_fair(self, flow: _SymbolFlow) -> None:
        rng, p = self.rng, self.params
        drift = 0.0
        if self._burst_left > 0 and self.symbols[self._burst_symbol] is flow:
            drift = p.volatility_ticks * (0.5 if self._burst_side is Side.BUY else -0.5)
        book = self.engine.books[flow.spec.symbol]
        bid, ask = book.bids.best(), book.asks.best()
        pull = 0.0
        if bid is not None and ask is not None:
            pull = ((bid + ask) / 2.0 - flow.fair) * 0.02
        flow.fair = max(10.0, flow.fair + rng.gauss(0.0, p.volatility_ticks) + drift + pull)

    def _place_limit(self, flow: _SymbolFlow, is_buy: bool) -> None:
        rng, p = self.rng, self.params
        if rng.random() < p.near_touch_share:
            distance = int(rng.expovariate(1.0))
        else:
            distance = rng.randrange(p.max_distance_ticks)
        size_scale = 1.0 + distance / self.params.size_growth_ticks
        if flow.withdrawal is not None:
            distance += flow.withdrawal.extra_ticks
            size_scale *= flow.withdrawal.size_factor
        lots = max(1, int(flow.mean_lots * size_scale * rng.lognormvariate(0.0, 0.8) * 0.5))
        if is_buy:
            price = math.floor(flow.fair - p.half_spread_ticks) - distance
        else:
            price = math.ceil(flow.fair + p.half_spread_ticks) + distance
        price = max(1, price)
        side = Side.BUY if is_buy else Side.SELL
        order, _ = self.engine.submit(
            OrderRequest(flow.spec.symbol, side, OrderType.LIMIT, TimeInForce.GTC, price=price, qty=lots)
        )
        if order.is_open:
            flow.live.append(_Resting(order.order_id, side, price))

    def _place_market(self, flow: _SymbolFlow, side: Side) -> None:
        p = self.params
        multiple = min(p.max_market_multiple, self.rng.paretovariate(p.pareto_alpha))
        lots = max(1, int(flow.mean_lots * 0.3 * multiple))
        self.engine.submit(OrderRequest(flow.spec.symbol, side, OrderType.MARKET, qty=lots))

    def _cancel_one(self, flow: _SymbolFlow) -> None:
        rng = self.rng
        for _ in range(8):
            if not flow.live:
                return
            nearest = self._nearest_inside(flow) if flow.withdrawal is not None else None
            if nearest is not None:
                index = nearest
            else:
                first, second = rng.randrange(len(flow.live)), rng.randrange(len(flow.live))
                far = abs(flow.live[first].price - flow.fair) >= abs(flow.live[second].price - flow.fair)
                index = first if far else second
            entry = flow.live[index]
            flow.live[index] = flow.live[-1]
            flow.live.pop()
            if self.engine.cancel_resting(flow.spec.symbol, entry.order_id):
                return

    def _nearest_inside(self, flow: _SymbolFlow) -> int | None:
        """Index of the live order nearest to fair while it is inside the withdrawal distance."""
        if not flow.live or flow.withdrawal is None:
            return None
        index = min(range(len(flow.live)), key=lambda i: abs(flow.live[i].price - flow.fair))
        return index if abs(flow.live[index].price - flow.fair) < flow.withdrawal.extra_ticks else None
