"""Pure parts of the push path: request signing, frame parsing, and executionReport -> order state."""

from __future__ import annotations

from decimal import Decimal

import orjson
from hypothesis import given
from hypothesis import strategies as st

from executor.commands import OrderType, Side, SubmitOrder, TimeInForce
from executor.order import Order, OrderStatus, OrderTrigger
from executor.user_stream import (
    AccountEvent,
    Answer,
    Connected,
    Disconnected,
    ExecutionReport,
    Malformed,
    WsApiSession,
    parse_frame,
    signature_payload,
    signed_params,
)
from infra.backoff import Backoff


def test_signature_is_binances_documented_example() -> None:
    # Arrange: the HMAC example of Binance's WebSocket API documentation ("SIGNED request example (HMAC)")
    params = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01000000",
              "price": "52000.00", "newOrderRespType": "ACK", "recvWindow": 100}
    # Act
    signed = signed_params(params, "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                           "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j", 1645423376532)
    # Assert
    assert signed["signature"] == "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"
    assert signature_payload(signed).startswith("apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A&"
                                                "newOrderRespType=ACK&price=52000.00")


def _report(**over) -> dict:
    event = {"e": "executionReport", "E": 1499405658658, "s": "ETHBTC", "c": "mUvoqJxFIILMdfAW5iGSOW", "S": "BUY",
             "o": "LIMIT", "f": "GTC", "q": "1.00000000", "p": "0.10264410", "P": "0.00000000", "F": "0.00000000",
             "g": -1, "C": "", "x": "NEW", "X": "NEW", "r": "NONE", "i": 4293153, "l": "0.00000000",
             "z": "0.00000000", "L": "0.00000000", "n": "0", "N": None, "T": 1499405658657, "t": -1, "I": 8641984,
             "w": True, "m": False, "M": False, "O": 1499405658657, "Z": "0.00000000", "Y": "0.00000000",
             "Q": "0.00000000", "W": 1499405658657, "V": "NONE"}
    return {"subscriptionId": 0, "event": {**event, **over}}


def test_frames_parse_into_answers_reports_account_events() -> None:
    answer = parse_frame(b'{"id": "3-7", "status": 400, "error": {"code": -2010, "msg": "no"}, "rateLimits": []}')
    assert answer == Answer("3-7", 400, None, -2010, "no") and not answer.ok
    new = parse_frame(orjson.dumps(_report()))
    assert isinstance(new, ExecutionReport) and new.trade() is None
    assert new.snapshot() == {"symbol": "ETHBTC", "orderId": 4293153, "clientOrderId": "mUvoqJxFIILMdfAW5iGSOW",
                              "status": "NEW", "executedQty": "0.00000000", "cummulativeQuoteQty": "0.00000000",
                              "transactTime": 1499405658657}
    fill = parse_frame(orjson.dumps(_report(x="TRADE", X="PARTIALLY_FILLED", l="0.40000000", z="0.40000000",
                                            L="0.10264410", n="0.00040000", N="ETH", t=77, m=True,
                                            Z="0.04105764", Y="0.04105764")))
    assert isinstance(fill, ExecutionReport)
    assert fill.trade() == {"symbol": "ETHBTC", "id": 77, "orderId": 4293153, "price": "0.10264410",
                            "qty": "0.40000000", "commission": "0.00040000", "commissionAsset": "ETH",
                            "time": 1499405658657, "isBuyer": True, "isMaker": True}
    cancel = parse_frame(orjson.dumps(_report(x="CANCELED", X="CANCELED", c="cancel-9", C="mUvoqJxFIILMdfAW5iGSOW")))
    assert isinstance(cancel, ExecutionReport) and cancel.client_order_id == "mUvoqJxFIILMdfAW5iGSOW"
    position = parse_frame(b'{"subscriptionId": 0, "event": {"e": "outboundAccountPosition", "E": 5, "u": 5, "B": []}}')
    assert position == AccountEvent("outboundAccountPosition", 5)


def test_bad_frames_are_malformed_with_a_reason() -> None:
    bad = [b"{nope", b"[1]", b'{"hello": 1}', b'{"subscriptionId": 0, "event": 3}',
           b'{"subscriptionId": 0, "event": {"e": "listStatus", "E": 1}}',
           orjson.dumps(_report(z="abc")), orjson.dumps(_report(z=1.5)), orjson.dumps(_report(X="WEIRD")),
           orjson.dumps(_report(x="TRADE", X="FILLED", t=-1)), orjson.dumps(_report(z="-1")),
           orjson.dumps(_report(z="1E-8")), orjson.dumps(_report(z="NaN"))]
    for raw in bad:
        parsed = parse_frame(raw)
        assert isinstance(parsed, Malformed) and parsed.raw == raw and parsed.error, raw


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_parse_to_a_frame_never_an_exception(raw) -> None:
    assert isinstance(parse_frame(raw), (Answer, ExecutionReport, AccountEvent, Malformed))


def _order(qty: Decimal) -> Order:
    cmd = SubmitOrder("tp-x-0-0", "sig", "binance", "BTCUSDT", Side.BUY, OrderType.LIMIT, TimeInForce.GTC,
                      Decimal(100), qty, 0, 0)
    order = Order(cmd)
    order.apply(OrderTrigger.SUBMIT)
    return order


lifecycles = st.integers(1, 20).flatmap(lambda total: st.tuples(
    st.just(total),
    st.lists(st.integers(1, 5), max_size=8),
    st.sampled_from(["CANCELED", "EXPIRED", None]),
    st.integers(0, 8),  # our cancel request before this report (8: none)
))


@given(lifecycles)
def test_reports_in_order_take_the_order_to_the_venues_state_and_repeats_change_nothing(lifecycle) -> None:
    # Arrange: the venue's reports of one order: NEW, fills, then FILLED or a final status
    total, chunks, final, cancel_at = lifecycle
    qty = Decimal(total)
    fills, done = [], Decimal(0)
    for chunk in chunks:
        step = min(Decimal(chunk), qty - done)
        if step <= 0:
            break
        done += step
        fills.append(done)
    statuses = [("NEW", Decimal(0))] + [("FILLED" if z == qty else "PARTIALLY_FILLED", z) for z in fills]
    if done < qty and final is not None:
        statuses.append((final, done))
    order = _order(qty)
    # Act: each report through the snapshot the trader applies, once and again
    for i, (status, executed) in enumerate(statuses):
        if i == cancel_at and order.can(OrderTrigger.CANCEL_REQUEST):
            order.apply(OrderTrigger.CANCEL_REQUEST)
        report = ExecutionReport("BTCUSDT", "tp-x-0-0", 9, "BUY", "TRADE" if i else "NEW", status, str(executed),
                                 str(executed * 100), "0", "0", "0", "", i, False, i, i)
        snap = report.snapshot()
        order.sync(snap["status"], Decimal(snap["executedQty"]), Decimal(snap["cummulativeQuoteQty"]), "9",
                   cancel_answered=False)
        assert order.sync(snap["status"], Decimal(snap["executedQty"]), Decimal(snap["cummulativeQuoteQty"]), "9",
                          cancel_answered=False) == []
    # Assert: the venue's last word, and a fill report never read as a failed cancel
    last_status, last_executed = statuses[-1]
    assert order.filled_qty == last_executed
    expected = {"NEW": OrderStatus.NEW, "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
                "FILLED": OrderStatus.FILLED, "CANCELED": OrderStatus.CANCELED, "EXPIRED": OrderStatus.EXPIRED}
    if order.status is OrderStatus.PENDING_CANCEL:
        assert last_status in ("NEW", "PARTIALLY_FILLED")  # the cancel's answer is still due
    else:
        assert order.status is expected[last_status]
    assert OrderTrigger.CANCEL_REJECT not in [t.trigger for t in order.history]
    assert OrderTrigger.CANCEL_REJECT_PARTIAL not in [t.trigger for t in order.history]


def test_the_engines_wait_keeps_what_woke_it_and_drain_hands_everything_out_in_arrival_order() -> None:
    # Arrange: a session that is never started (its inbox is what the reader thread fills)
    session = WsApiSession("ws://127.0.0.1:9/ws-api/v3", "k", "s", lambda: 0, 5000, Backoff(0.1, 1.0))
    first, second = Connected(1), Disconnected(1, "gone", ())
    # Act
    session.wait(0.001)  # nothing arrives
    empty = session.drain()
    session.inbox.put(first)
    session.wait(5.0)  # takes `first` and returns
    session.wait(5.0)  # something is held already: returns at once, takes nothing more
    session.inbox.put(second)
    drained = session.drain()
    # Assert
    assert empty == []
    assert drained == [first, second]
    assert session.drain() == []
