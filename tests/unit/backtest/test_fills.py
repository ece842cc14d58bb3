"""The queue-position fill rule: properties over generated trade tapes, and the cases that define it."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from backtest.fills import QueuePosition, queue_ahead
from executor.commands import Side

PRICE = Decimal(100)
qtys = st.integers(min_value=1, max_value=500).map(lambda n: Decimal(n) / 100)
# (price offset in ticks from ours, qty, aggressor)
trades = st.lists(st.tuples(st.integers(min_value=-2, max_value=2), qtys, st.sampled_from(list(Side))), max_size=40)


def _price(side: Side, ticks: int) -> Decimal:
    # positive ticks = through our price (below a bid, above an ask)
    return PRICE - ticks if side is Side.BUY else PRICE + ticks


@given(side=st.sampled_from(list(Side)), qty=qtys, ahead=qtys, tape=trades)
def test_fills_equal_the_volume_reaching_us_after_the_queue_ahead_capped_at_the_order(
        side: Side, qty: Decimal, ahead: Decimal, tape: list[tuple[int, Decimal, Side]]) -> None:
    # Arrange: an independent account of the rule, trade by trade on plain numbers
    order = QueuePosition(side, PRICE, qty, ahead)
    left, before, expected = qty, ahead, Decimal(0)
    for ticks, size, aggressor in tape:
        if aggressor is side or ticks < 0:
            continue
        if ticks > 0:
            take = min(left, size)
            before = Decimal(0)
        else:
            take = min(left, max(Decimal(0), size - before))
            before = max(Decimal(0), before - size)
        expected += take
        left -= take

    # Act
    filled = sum((order.on_trade(_price(side, t), q, a) for t, q, a in tape), Decimal(0))

    # Assert
    assert filled == expected
    assert 0 <= filled <= qty and order.remaining == qty - filled


@given(side=st.sampled_from(list(Side)), qty=qtys, ahead=qtys, sizes=st.lists(qtys, min_size=1, max_size=10))
def test_a_trade_at_our_price_split_in_parts_fills_what_the_whole_trade_fills(
        side: Side, qty: Decimal, ahead: Decimal, sizes: list[Decimal]) -> None:
    # Arrange
    whole, parts = QueuePosition(side, PRICE, qty, ahead), QueuePosition(side, PRICE, qty, ahead)
    against = Side.SELL if side is Side.BUY else Side.BUY

    # Act
    at_once = whole.on_trade(PRICE, sum(sizes, Decimal(0)), against)
    piecewise = sum((parts.on_trade(PRICE, s, against) for s in sizes), Decimal(0))

    # Assert
    assert at_once == piecewise == min(qty, max(Decimal(0), sum(sizes, Decimal(0)) - ahead))


@given(side=st.sampled_from(list(Side)), qty=qtys, ahead=qtys, tape=trades)
def test_trades_on_our_side_or_short_of_our_price_never_fill(
        side: Side, qty: Decimal, ahead: Decimal, tape: list[tuple[int, Decimal, Side]]) -> None:
    # Arrange: only those trades
    harmless = [(t, q, a) for t, q, a in tape if a is side or t < 0]
    order = QueuePosition(side, PRICE, qty, ahead)

    # Act
    filled = [order.on_trade(_price(side, t), q, a) for t, q, a in harmless]

    # Assert
    assert all(f == 0 for f in filled) and order.ahead == ahead and order.remaining == qty


@given(ahead=qtys, visible=st.lists(qtys, max_size=10))
def test_a_shrinking_level_moves_us_up_and_a_growing_one_never_moves_us_back(ahead: Decimal,
                                                                             visible: list[Decimal]) -> None:
    # Arrange
    order = QueuePosition(Side.BUY, PRICE, Decimal(1), ahead)

    # Act / Assert
    for v in visible:
        before = order.ahead
        order.on_depth(v)
        assert order.ahead == min(before, v)
    assert order.ahead == min([ahead, *visible])


def test_queue_ahead_is_the_visible_quantity_at_our_price_and_nothing_when_we_improve_it() -> None:
    # Arrange
    bids = ((Decimal("100.2"), Decimal(3)), (Decimal("100.1"), Decimal("1.5")))

    # Act / Assert
    assert queue_ahead(bids, Decimal("100.1")) == Decimal("1.5")
    assert queue_ahead(bids, Decimal("100.3")) == 0


def test_an_order_behind_two_lots_fills_from_the_third_traded_lot_on() -> None:
    # Arrange: buy 1 at 100 behind 2 visible; sells of 1.5, 1 and 1 hit 100
    order = QueuePosition(Side.BUY, PRICE, Decimal(1), Decimal(2))

    # Act
    fills = [order.on_trade(PRICE, q, Side.SELL) for q in (Decimal("1.5"), Decimal(1), Decimal(1))]

    # Assert
    assert fills == [0, Decimal("0.5"), Decimal("0.5")] and order.remaining == 0
