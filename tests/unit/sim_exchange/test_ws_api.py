"""Pure parts of the WebSocket API: request signing and verification, frame parsing, and the account
events (executionReport) the engine makes for every order change."""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_exchange import auth, errors, payloads
from sim_exchange.engine import (
    Account,
    Balance,
    Engine,
    OrderRequest,
    OrderType,
    OrderUpdate,
    Side,
    Status,
    TimeInForce,
)
from sim_exchange.symbols import make_spec
from sim_exchange.ws_api import parse_request, string_params

SPEC = make_spec("BTCUSDT")
BASE = SPEC.start_price_ticks

param_values = st.one_of(st.integers(0, 10**13), st.booleans(),
                         st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters="._-"), max_size=12))
# a request's own parameters: "signature" is the one name the recipe leaves out (it carries the result)
param_dicts = st.dictionaries(
    st.text("abcdefghijklmnopqrstuvwxyzABCXYZ", min_size=1, max_size=10).filter(lambda k: k != "signature"),
    param_values, max_size=8)


@given(param_dicts, st.text(min_size=1, max_size=20))
def test_hmac_payload_is_binances_recipe_and_only_the_right_secret_verifies(params, secret) -> None:
    # Arrange: the documented recipe, written independently of the simulator
    expected = "&".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in sorted(params.items()))
    signature = hmac.new(secret.encode(), expected.encode(), hashlib.sha256).hexdigest()
    # Act
    payload = auth.ws_payload({**params, "signature": signature})
    # Assert
    assert payload == expected
    auth.verify(secret, None, payload, signature)
    auth.verify(secret, None, payload, signature.upper())
    with pytest.raises(errors.BinanceError) as refused:
        auth.verify(secret + "x", None, payload, signature)
    assert refused.value.code == -1022


@settings(max_examples=30)
@given(param_dicts)
def test_ed25519_signature_verifies_with_its_public_key_only(params) -> None:
    # Arrange
    private, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes_raw()
    payload = auth.ws_payload(params)
    signature = base64.b64encode(private.sign(payload.encode())).decode()
    # Act / Assert
    auth.verify("", public, payload, signature)
    for bad in (base64.b64encode(other.sign(payload.encode())).decode(), "not base64!", "", signature[:-4]):
        with pytest.raises(errors.BinanceError):
            auth.verify("", public, payload, bad)
    with pytest.raises(errors.BinanceError):  # the payload changed
        auth.verify("", public, payload + "&x=1", signature)


def test_rest_accepts_a_url_encoded_ed25519_signature() -> None:
    # Arrange
    private = Ed25519PrivateKey.generate()
    query = "symbol=BTCUSDT&timestamp=1"
    signature = base64.b64encode(private.sign(query.encode())).decode()
    encoded = signature.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    # Act / Assert
    auth.verify_signature("", f"{query}&signature={encoded}", private.public_key().public_bytes_raw())


@pytest.mark.parametrize(("frame", "code"), [
    ("{nope", -1135),
    ("[]", -1135),
    ('{"id": 1}', -1135),
    ('{"id": 1, "method": "ping", "params": []}', -1135),
    ('{"id": 1, "method": "ping", "params": {"a": {"b": 1}}}', -1135),
    ('{"id": true, "method": "ping"}', -1135),
    ('{"id": "' + "x" * 37 + '", "method": "ping"}', -1135),
])
def test_malformed_request_frames_are_refused_with_1135(frame, code) -> None:
    with pytest.raises(errors.BinanceError) as refused:
        parse_request(frame)
    assert refused.value.code == code


def test_request_parameters_reach_rest_as_strings() -> None:
    request = parse_request(orjson.dumps({"id": None, "method": "order.place",
                                          "params": {"quantity": "0.1", "timestamp": 5, "returnRateLimits": False}}))
    assert request.id is None and request.method == "order.place"
    assert string_params(request.params) == {"quantity": "0.1", "timestamp": "5", "returnRateLimits": "false"}


op = st.one_of(
    st.tuples(st.sampled_from(["a", "b"]), st.just("limit"), st.sampled_from([Side.BUY, Side.SELL]), st.integers(-4, 4),
              st.integers(1, 30), st.sampled_from([TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK])),
    st.tuples(st.sampled_from(["a", "b"]), st.just("market"), st.sampled_from([Side.BUY, Side.SELL]), st.just(0),
              st.integers(1, 40), st.none()),
    st.tuples(st.sampled_from(["a", "b"]), st.just("cancel"), st.just(Side.BUY), st.integers(0, 100), st.just(0),
              st.none()),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(op, min_size=1, max_size=80))
def test_every_account_order_change_is_reported_once_in_order(ops) -> None:
    # Arrange: two accounts trading with each other (maker and taker reports both)
    engine = Engine([SPEC], clock=lambda: 1)
    for key in ("a", "b"):
        engine.add_account(Account(key, "s", balances={"USDT": Balance(Decimal(10**9)), "BTC": Balance(Decimal(10**6))}))
    reports: list[OrderUpdate] = []
    placed: list[tuple[str, int]] = []
    # Act
    for account, kind, side, offset, qty, tif in ops:
        try:
            if kind == "cancel":
                if placed:
                    owner, order_id = placed[offset % len(placed)]
                    engine.cancel(owner, "BTCUSDT", order_id, None)
            else:
                order_type = OrderType.LIMIT if kind == "limit" else OrderType.MARKET
                order, _ = engine.submit(OrderRequest("BTCUSDT", side, order_type, tif,
                                                      price=BASE + offset if kind == "limit" else None, qty=qty,
                                                      account=account))
                placed.append((account, order.order_id))
        except errors.BinanceError:
            pass
        reports += [e for e in engine.take_events() if isinstance(e, OrderUpdate)]
    # Assert: per order NEW first, cumulative figures that add up, a final report equal to the order
    fills_reported = sorted((r.order.account, r.fill.trade_id, r.fill.order_id) for r in reports if r.fill)
    fills_held = sorted((k, f.trade_id, f.order_id) for (k, _), fs in engine.account_fills.items() for f in fs)
    assert fills_reported == fills_held, "every fill reported exactly once"
    assert [r.execution_id for r in reports] == list(range(1, len(reports) + 1))
    by_order: dict[int, list[OrderUpdate]] = {}
    for r in reports:
        by_order.setdefault(r.order.order_id, []).append(r)
    for order_id, updates in by_order.items():
        venue = engine.order(updates[0].order.account or "", "BTCUSDT", order_id, None)
        assert updates[0].execution == "NEW"
        executed = 0
        for r in updates[1:]:
            if r.execution == "TRADE":
                executed += r.fill.qty
                assert r.order.executed == executed
                assert r.order.status in (Status.PARTIALLY_FILLED, Status.FILLED)
            else:
                assert r.execution in ("CANCELED", "EXPIRED") and r is updates[-1]
        last = updates[-1]
        assert (last.order.status, last.order.executed, last.order.cum_quote) == \
            (venue.status, venue.executed, venue.cum_quote)
        report = payloads.execution_report(SPEC, last, 7)
        assert (report["X"], report["z"], report["i"]) == (venue.status.value, SPEC.qty_str(venue.executed), order_id)
