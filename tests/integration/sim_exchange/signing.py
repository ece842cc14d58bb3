"""Signed Binance REST and WebSocket API calls for the simulator tests (the recipes Binance documents)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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


def new_ed25519_account(sim, balances: dict[str, str] | None = None) -> tuple[str, Ed25519PrivateKey]:
    """Create an account whose API key is an Ed25519 key (the public key registered, as on Binance)."""
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    key = f"ed-{uuid.uuid4().hex[:12]}"
    body: dict[str, Any] = {"api_key": key, "api_secret": "unused", "ed25519_public_key": pem}
    if balances:
        body["balances"] = balances
    sim.control("POST", "/_sim/accounts", body)
    return key, private


class WsApi:
    """A bare WebSocket API client for the tests: sends Binance's signed frames, keeps answers and events apart."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.answers: dict[Any, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self._next = 0
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, sim, session: aiohttp.ClientSession, query: str = "") -> WsApi:
        url = sim.rest_url.replace("http://", "ws://") + "/ws-api/v3" + query
        return cls(await session.ws_connect(url))

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            body = orjson.loads(msg.data)
            if "event" in body:
                self.events.append(body)
            else:
                self.answers[body.get("id")] = body
        self.closed.set()

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def call(self, method: str, params: dict[str, Any] | None = None, *, key: str | None = None,
                   secret: str | None = None, ed25519: Ed25519PrivateKey | None = None,
                   timestamp: int | None = None, timeout_s: float = 10.0) -> dict[str, Any]:
        """Send one request (signed when a key is given) and wait for its answer."""
        self._next += 1
        request_id = f"r{self._next}"
        params = dict(params or {})
        if key is not None or ed25519 is not None:
            params.setdefault("timestamp", timestamp if timestamp is not None else int(time.time() * 1000))
        if key is not None:
            params["apiKey"] = key
            # Binance's recipe, written out here rather than taken from the simulator: every
            # parameter sorted by name as name=value joined by '&' (JSON booleans as true/false)
            payload = "&".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in sorted(params.items()))
            if ed25519 is not None:
                params["signature"] = base64.b64encode(ed25519.sign(payload.encode())).decode()
            else:
                params["signature"] = hmac.new((secret or "").encode(), payload.encode(), hashlib.sha256).hexdigest()
        await self.ws.send_str(orjson.dumps({"id": request_id, "method": method, "params": params}).decode())
        deadline = time.monotonic() + timeout_s
        while request_id not in self.answers:
            if self.closed.is_set() or time.monotonic() > deadline:
                raise ConnectionError(f"no answer to {method} ({'closed' if self.closed.is_set() else 'timeout'})")
            await asyncio.sleep(0.005)
        return self.answers.pop(request_id)

    async def wait_events(self, predicate, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``predicate(events so far)`` holds; return the events."""
        deadline = time.monotonic() + timeout_s
        while not predicate([e["event"] for e in self.events]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"events so far: {[e['event'].get('e') for e in self.events]}")
            await asyncio.sleep(0.005)
        return [e["event"] for e in self.events]

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
