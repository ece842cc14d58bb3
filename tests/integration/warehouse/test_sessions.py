"""HTTP sessions (``session_id``): state that lives across requests, as in ClickHouse."""

from __future__ import annotations

import threading
import time
import uuid

import clickhouse_connect
import pytest
import requests

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _post(url: str, sql: str, **params: str) -> requests.Response:
    return requests.post(url, params=params, data=sql.encode(), timeout=30)


def _sid() -> str:
    return f"s-{uuid.uuid4().hex}"


def test_set_use_and_temporary_tables_persist_within_a_session_only(warehouse_url: str) -> None:
    sid = _sid()
    _post(warehouse_url, "CREATE DATABASE IF NOT EXISTS sessions_db")

    for sql in ("SET max_result_rows = 7", "USE sessions_db", "CREATE TEMPORARY TABLE scratch (a UInt8)",
                "INSERT INTO scratch VALUES (1), (2)"):
        assert _post(warehouse_url, sql, session_id=sid).status_code == 200, sql
    inside = _post(warehouse_url, "SELECT getSetting('max_result_rows'), currentDatabase(), (SELECT count() FROM scratch)",
                   session_id=sid)
    outside = _post(warehouse_url, "SELECT getSetting('max_result_rows'), currentDatabase()")
    other = _post(warehouse_url, "SELECT count() FROM scratch", session_id=_sid())

    assert inside.text == "7\tsessions_db\t2\n"
    assert outside.text == "0\tdefault\n"
    assert other.status_code == 404 and other.headers["X-ClickHouse-Exception-Code"] == "60"


def test_clickhouse_connect_client_keeps_its_set_statements(warehouse_url: str) -> None:
    host, port = warehouse_url.removeprefix("http://").split(":")
    client = clickhouse_connect.get_client(host=host, port=int(port))  # autogenerate_session_id: on by default

    client.command("SET max_result_rows = 11")

    assert client.command("SELECT getSetting('max_result_rows')") == 11


def test_a_session_in_use_refuses_a_concurrent_request(warehouse_url: str) -> None:
    sid = _sid()
    slow: dict[str, requests.Response] = {}
    sleeper = threading.Thread(target=lambda: slow.update(r=_post(
        warehouse_url, "SELECT max(sleepEachRow(0.2) + number) FROM numbers(8) SETTINGS max_block_size = 1",
        session_id=sid, wait_end_of_query="1")))
    sleeper.start()
    time.sleep(0.5)

    second = _post(warehouse_url, "SELECT 1", session_id=sid)
    sleeper.join(timeout=30)

    assert second.headers["X-ClickHouse-Exception-Code"] == "373"
    assert "SESSION_IS_LOCKED" in second.text
    assert slow["r"].text == "7\n"
    assert _post(warehouse_url, "SELECT 1", session_id=sid).text == "1\n"


def test_session_check_refuses_an_unknown_session(warehouse_url: str) -> None:
    response = _post(warehouse_url, "SELECT 1", session_id=_sid(), session_check="1")

    assert response.headers["X-ClickHouse-Exception-Code"] == "372"
    assert "SESSION_NOT_FOUND" in response.text


def test_an_idle_session_expires_after_its_timeout(warehouse_url: str) -> None:
    sid = _sid()
    _post(warehouse_url, "SET max_result_rows = 5", session_id=sid, session_timeout="1")

    time.sleep(7)  # timeout 1 s; the warehouse sweeps idle sessions every 5 s

    response = _post(warehouse_url, "SELECT getSetting('max_result_rows')", session_id=sid, session_check="1")
    assert response.headers.get("X-ClickHouse-Exception-Code") == "372"
