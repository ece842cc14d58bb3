"""Property tests of the matching engine against a naive reference model."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from sim_exchange import errors
from sim_exchange.engine import (
    Account,
    Balance,
    Engine,
    LevelChange,
    OrderRequest,
    OrderType,
    Side,
    Status,
    TimeInForce,
    TradeEvent,
    apply_level_changes,
)
from sim_exchange.symbols import make_spec

SPEC = make_spec("BTCUSDT")
BASE = SPEC.start_price_ticks

op = st.one_of(
    st.tuples(
        st.just("limit"),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(-6, 6),
        st.integers(1, 50),
        st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]),
    ),
    st.tuples(st.just("market"), st.sampled_from([Side.BUY, Side.SELL]), st.just(0), st.integers(1, 80), st.none()),
    st.tuples(st.just("cancel"), st.just(Side.BUY), st.integers(0, 1000), st.just(0), st.none()),
)


class NaiveBook:
    """Reference: a flat list of resting orders matched by sorting on (price, arrival)."""

    def __init__(self) -> None:
        self.orders: list[list] = []  # [order_id, side, price, remaining, seq]
        self.seq = 0

    def match(self, side: Side, limit: int | None, qty: int, fok: bool) -> list[tuple[int, int, int]]:
        def crosses(o: list) -> bool:
            if o[1] is side:
                return False
            return limit is None or (o[2] <= limit if side is Side.BUY else o[2] >= limit)

        candidates = sorted(
            (o for o in self.orders if crosses(o)), key=lambda o: (o[2] if side is Side.BUY else -o[2], o[4])
        )
        if fok and sum(o[3] for o in candidates) < qty:
            return []
        fills = []
        for o in candidates:
            if qty == 0:
                break
            take = min(qty, o[3])
            o[3] -= take
            qty -= take
            fills.append((o[0], o[2], take))
        self.orders = [o for o in self.orders if o[3] > 0]
        return fills

    def rest(self, order_id: int, side: Side, price: int, qty: int) -> None:
        self.seq += 1
        self.orders.append([order_id, side, price, qty, self.seq])

    def cancel(self, order_id: int) -> None:
        self.orders = [o for o in self.orders if o[0] != order_id]

    def levels(self, side: Side) -> dict[int, int]:
        out: dict[int, int] = {}
        for o in self.orders:
            if o[1] is side:
                out[o[2]] = out.get(o[2], 0) + o[3]
        return out


def _check_book(engine: Engine) -> None:
    book = engine.books["BTCUSDT"]
    bid, ask = book.bids.best(), book.asks.best()
    assert bid is None or ask is None or bid < ask, "book crossed at rest"
    for side in (book.bids, book.asks):
        assert side.prices == sorted(side.levels)
        for price, level in side.levels.items():
            assert level, "empty level kept"
            assert side.sizes[price] == sum(o.remaining for o in level.values())
            assert all(o.is_open and o.remaining > 0 and o.price == price for o in level.values())


@settings(max_examples=150, deadline=None)
@given(st.lists(op, min_size=1, max_size=120))
def test_engine_matches_reference_model_and_keeps_invariants(ops) -> None:
    # Arrange
    engine = Engine([SPEC], clock=lambda: 0)
    naive = NaiveBook()
    mirror_bids: dict[int, int] = {}
    mirror_asks: dict[int, int] = {}
    last_update = 0
    submitted = 0
    gone = 0
    placed: list[int] = []
    # Act / Assert, step by step
    for kind, side, offset, qty, tif in ops:
        if kind == "cancel":
            if not placed:
                continue
            order_id = placed[offset % len(placed)]
            cancelled = engine.cancel_resting("BTCUSDT", order_id)
            resting_now = [o[3] for o in naive.orders if o[0] == order_id]
            assert cancelled == bool(resting_now)
            gone += sum(resting_now)
            naive.cancel(order_id)
            events = engine.take_events()
        else:
            price = BASE + offset if kind == "limit" else None
            order_type = OrderType.LIMIT if kind == "limit" else OrderType.MARKET
            order, _ = engine.submit(OrderRequest("BTCUSDT", side, order_type, tif, price=price, qty=qty))
            placed.append(order.order_id)
            submitted += qty
            expected = naive.match(side, price, qty, tif is TimeInForce.FOK)
            events = engine.take_events()
            trades = [e for e in events if isinstance(e, TradeEvent)]
            got = [(e.sell_order_id if side is Side.BUY else e.buy_order_id, e.price, e.qty) for e in trades]
            assert got == expected, "price-time priority differs from the reference"
            assert all(e.buyer_is_maker == (side is Side.SELL) for e in trades)
            filled = sum(f[2] for f in expected)
            assert order.executed == filled
            if order.status in (Status.NEW, Status.PARTIALLY_FILLED):
                naive.rest(order.order_id, side, price, qty - filled)
            else:
                assert order.status in (Status.FILLED, Status.EXPIRED)
                assert (order.status is Status.FILLED) == (filled == qty)
                gone += qty - filled
        changes = [e for e in events if isinstance(e, LevelChange)]
        for change in changes:
            assert change.update_id == last_update + 1, "update ids must be consecutive"
            last_update = change.update_id
        apply_level_changes(mirror_bids, mirror_asks, changes)
        _check_book(engine)
        book = engine.books["BTCUSDT"]
        assert book.update_id == last_update
        assert mirror_bids == book.bids.sizes == naive.levels(Side.BUY)
        assert mirror_asks == book.asks.sizes == naive.levels(Side.SELL)
    # quantity conservation: every submitted lot is traded (as maker or taker), resting, cancelled or expired
    traded = sum(t.qty for t in engine.trades["BTCUSDT"])
    resting = sum(o[3] for o in naive.orders)
    assert submitted == 2 * traded + resting + gone
    assert sum(engine.books["BTCUSDT"].bids.sizes.values()) + sum(engine.books["BTCUSDT"].asks.sizes.values()) == resting


@settings(max_examples=80, deadline=None)
@given(st.lists(op, min_size=5, max_size=80), st.integers(0, 79))
def test_snapshot_at_any_point_plus_later_diffs_rebuilds_the_book(ops, cut) -> None:
    engine = Engine([SPEC], clock=lambda: 0)
    placed: list[int] = []
    snapshot = None
    later: list[LevelChange] = []
    for index, (kind, side, offset, qty, tif) in enumerate(ops):
        if kind == "cancel":
            if placed:
                engine.cancel_resting("BTCUSDT", placed[offset % len(placed)])
        else:
            price = BASE + offset if kind == "limit" else None
            order_type = OrderType.LIMIT if kind == "limit" else OrderType.MARKET
            order, _ = engine.submit(OrderRequest("BTCUSDT", side, order_type, tif, price=price, qty=qty))
            placed.append(order.order_id)
        events = engine.take_events()
        if snapshot is not None:
            later.extend(e for e in events if isinstance(e, LevelChange))
        if index == cut % len(ops):
            snapshot = engine.books["BTCUSDT"].snapshot(10_000)
    assert snapshot is not None
    last_id, bids, asks = snapshot
    rebuilt_bids, rebuilt_asks = dict(bids), dict(asks)
    assert all(c.update_id > last_id for c in later)
    apply_level_changes(rebuilt_bids, rebuilt_asks, later)
    book = engine.books["BTCUSDT"]
    assert rebuilt_bids == book.bids.sizes
    assert rebuilt_asks == book.asks.sizes


account_op = st.tuples(
    st.sampled_from(["alice", "bob"]),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.sampled_from(["limit", "limit", "market", "quote", "maker"]),
    st.integers(-4, 4),
    st.integers(1, 3000),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(account_op, min_size=1, max_size=60), st.booleans())
def test_balances_plus_fees_are_conserved_between_accounts(ops, cancel_all_at_end) -> None:
    # Arrange: two accounts trading only with each other
    engine = Engine([SPEC], clock=lambda: 0)
    start = {"USDT": Decimal(100000), "BTC": Decimal(2)}
    for key in ("alice", "bob"):
        engine.add_account(
            Account(key, "s", Decimal("0.0002"), Decimal("0.0007"), {a: Balance(free=v) for a, v in start.items()})
        )
    fees = {"USDT": Decimal(0), "BTC": Decimal(0)}
    # Act
    for key, side, kind, offset, qty in ops:
        price = BASE + offset
        request = {
            "limit": OrderRequest("BTCUSDT", side, OrderType.LIMIT, TimeInForce.GTC, price=price, qty=qty, account=key),
            "maker": OrderRequest("BTCUSDT", side, OrderType.LIMIT_MAKER, price=price, qty=qty, account=key),
            "market": OrderRequest("BTCUSDT", side, OrderType.MARKET, qty=qty, account=key),
            "quote": OrderRequest("BTCUSDT", side, OrderType.MARKET, quote_qty=Decimal(qty) / 10, account=key),
        }[kind]
        try:
            engine.submit(request)
        except errors.BinanceError as err:
            assert err.code == -2010
        engine.take_events()
    if cancel_all_at_end:
        for key in ("alice", "bob"):
            for order in engine.open_orders(key, "BTCUSDT"):
                engine.cancel(key, "BTCUSDT", order.order_id, None)
    for key in ("alice", "bob"):
        for fill in engine.fills(key, "BTCUSDT"):
            fees[fill.commission_asset] += fill.commission
    # Assert
    for asset, amount in start.items():
        held = sum(engine.accounts[k].balance(asset).free + engine.accounts[k].balance(asset).locked for k in ("alice", "bob"))
        assert held + fees[asset] == 2 * amount, asset
        for key in ("alice", "bob"):
            balance = engine.accounts[key].balance(asset)
            assert balance.free >= 0 and balance.locked >= 0
            if cancel_all_at_end:
                assert balance.locked == 0
    _check_book(engine)
