"""The market streams' pure parts: Binance's websocket commands and the depth-diff buffer."""

from __future__ import annotations

import orjson
import pytest

from sim_exchange.engine import LevelChange
from sim_exchange.market_streams import DepthBuffer, handle_command

VALID = {"btcusdt@trade", "btcusdt@depth", "ethusdt@bookTicker"}


def _run(body: object, subscribed: set[str] | None = None, combined: bool = False, max_streams: int = 2):
    text = body if isinstance(body, str) else orjson.dumps(body).decode()
    return handle_command(text, subscribed or set(), combined, VALID.__contains__, max_streams)


def test_subscribe_unsubscribe_and_list() -> None:
    sub = _run({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1})
    assert sub.reply == {"result": None, "id": 1} and sub.subscribe == ("btcusdt@trade",)
    unsub = _run({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": "x"}, {"btcusdt@trade"})
    assert unsub.reply == {"result": None, "id": "x"} and unsub.unsubscribe == ("btcusdt@trade",)
    listed = _run({"method": "LIST_SUBSCRIPTIONS", "id": 3}, {"ethusdt@bookTicker", "btcusdt@depth"})
    assert listed.reply == {"result": ["btcusdt@depth", "ethusdt@bookTicker"], "id": 3}


def test_combined_property_is_set_and_read() -> None:
    assert _run({"method": "SET_PROPERTY", "params": ["combined", True], "id": 4}).combined is True
    assert _run({"method": "GET_PROPERTY", "params": ["combined"], "id": 5}, combined=True).reply == {"result": True, "id": 5}
    assert _run({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 6}).combined is None


@pytest.mark.parametrize(("body", "code", "request_id"), [
    ("{not json", 3, None),
    ([1, 2], 3, None),
    ({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1.5}, 2, None),
    ({"method": "SUBSCRIBE", "params": "btcusdt@trade", "id": 7}, 1, 7),
    ({"method": "SUBSCRIBE", "params": ["xrpusdt@trade"], "id": 8}, 2, 8),
    ({"method": "SUBSCRIBE", "params": [42], "id": 9}, 2, 9),
    ({"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@depth", "ethusdt@bookTicker"], "id": 10}, 2, 10),
    ({"method": "TRADE", "params": [], "id": 11}, 2, 11),
])
def test_bad_commands_get_binances_error_codes_and_change_nothing(body: object, code: int, request_id: object) -> None:
    result = _run(body)
    assert result.reply["error"]["code"] == code and result.reply["id"] == request_id
    assert (result.subscribe, result.unsubscribe, result.combined) == ((), (), None)


def test_depth_buffer_keeps_the_update_id_range_and_the_newest_qty_per_level() -> None:
    buffer = DepthBuffer()
    assert buffer.take() is None
    for update_id, side, price, qty in [(11, "BUY", 100, 5), (12, "SELL", 101, 3), (13, "BUY", 100, 0), (14, "BUY", 99, 2)]:
        buffer.add(LevelChange("BTCUSDT", update_id, side, price, qty))
    assert buffer.take() == (11, 14, {100: 0, 99: 2}, {101: 3})
    assert buffer.take() is None
    buffer.add(LevelChange("BTCUSDT", 15, "SELL", 102, 1))
    assert buffer.take() == (15, 15, {}, {102: 1})
