"""Signed Binance REST calls for the simulator tests (the same recipe Binance documents)."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlencode

import requests

from sim_exchange.auth import sign


def new_account(sim, balances: dict[str, str] | None = None, maker_fee: str = "0.001", taker_fee: str = "0.001") -> tuple[str, str]:
    """Create a fresh account on ``sim`` so tests never share balances or client order ids."""
    key, secret = f"test-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    body: dict[str, Any] = {"api_key": key, "api_secret": secret, "maker_fee": maker_fee, "taker_fee": taker_fee}
    if balances:
        body["balances"] = balances
    sim.control("POST", "/_sim/accounts", body)
    return key, secret


def signed(
    sim, method: str, path: str, key: str, secret: str, timestamp: int | None = None, timeout: float = 10, **params: Any
) -> requests.Response:
    """Send a signed request: params in the query for GET/DELETE, in the form body for POST."""
    params = {k: v for k, v in params.items() if v is not None}
    params["timestamp"] = timestamp if timestamp is not None else int(time.time() * 1000)
    query = urlencode(params)
    query += "&signature=" + sign(secret, query)
    headers = {"X-MBX-APIKEY": key}
    url = sim.rest_url + path
    if method in ("GET", "DELETE"):
        return requests.request(method, f"{url}?{query}", headers=headers, timeout=timeout)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return requests.request(method, url, data=query, headers=headers, timeout=timeout)
