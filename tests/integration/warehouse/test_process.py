"""The warehouse as a process: credentials, restart on the same store, pause/resume, SIGTERM drain.

Each test starts its own ``tickpipe warehouse`` (``WarehouseProcess``) on a free port with a tmp
data dir and stops exactly that pid.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
import requests
from clickhouse_connect.driver.exceptions import DatabaseError

from infra.broker import free_port
from warehouse.process import WarehouseProcess, WarehouseStartError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def locked_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarehouseProcess]:
    base = tmp_path_factory.mktemp("locked")
    with WarehouseProcess(free_port(), base / "data", user="analyst", password="s3cret") as proc:
        yield proc


def test_wrong_or_missing_password_is_refused_like_clickhouse(locked_warehouse: WarehouseProcess) -> None:
    url = locked_warehouse.url
    wrong = requests.post(url, data=b"SELECT 1", headers={"X-ClickHouse-User": "analyst", "X-ClickHouse-Key": "nope"},
                          timeout=10)
    missing = requests.post(url, data=b"SELECT 1", timeout=10)

    assert wrong.status_code == 403
    assert wrong.headers["X-ClickHouse-Exception-Code"] == "516"
    assert wrong.text.startswith("Code: 516. DB::Exception: analyst: Authentication failed")
    assert missing.status_code == 401
    assert missing.headers["X-ClickHouse-Exception-Code"] == "194"
    assert requests.get(f"{url}/ping", timeout=5).text == "Ok.\n"  # liveness stays open, as in ClickHouse


def test_right_password_is_accepted_by_header_url_parameter_and_basic_auth(locked_warehouse: WarehouseProcess) -> None:
    url = locked_warehouse.url
    basic = base64.b64encode(b"analyst:s3cret").decode()

    by_header = requests.post(url, data=b"SELECT 1", headers={"X-ClickHouse-User": "analyst", "X-ClickHouse-Key": "s3cret"},
                              timeout=10)
    by_params = requests.post(url, params={"user": "analyst", "password": "s3cret"}, data=b"SELECT 2", timeout=10)
    by_basic = requests.post(url, data=b"SELECT 3", headers={"Authorization": f"Basic {basic}"}, timeout=10)

    assert [r.text for r in (by_header, by_params, by_basic)] == ["1\n", "2\n", "3\n"]


def test_clickhouse_connect_with_a_wrong_password_fails_and_with_the_right_one_works(
    locked_warehouse: WarehouseProcess,
) -> None:
    port = locked_warehouse.port
    with pytest.raises(DatabaseError) as caught:
        clickhouse_connect.get_client(host="127.0.0.1", port=port, username="analyst", password="nope")
    assert "516" in str(caught.value)

    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, username="analyst", password="s3cret")
    assert client.command("SELECT 5") == 5


def test_data_survives_a_restart_and_sigterm_lets_the_running_query_finish(tmp_path: Path) -> None:
    proc = WarehouseProcess(free_port(), tmp_path / "data").start()
    try:
        client = clickhouse_connect.get_client(host="127.0.0.1", port=proc.port)
        client.command("CREATE TABLE kept (n UInt32) ENGINE = MergeTree ORDER BY n")
        client.insert("kept", [[i] for i in range(1000)], column_names=["n"])
        slow: dict[str, requests.Response] = {}
        query = "SELECT max(sleepEachRow(0.25) + number) FROM numbers(6) SETTINGS max_block_size = 1"
        runner = threading.Thread(target=lambda: slow.update(r=requests.post(proc.url, data=query.encode(), timeout=60)))
        runner.start()
        _wait_until_running(proc.url)

        returncode = proc.stop()
        runner.join(timeout=30)

        assert returncode == 0
        assert slow["r"].status_code == 200 and slow["r"].text == "5\n"
        proc.start()
        again = clickhouse_connect.get_client(host="127.0.0.1", port=proc.port)
        assert again.command("SELECT count(), sum(n) FROM kept") == ["1000", str(sum(range(1000)))]
    finally:
        proc.stop()


def _wait_until_running(url: str) -> None:
    for _ in range(100):
        if requests.get(f"{url}/health", timeout=5).json()["in_flight"] >= 1:
            return
        threading.Event().wait(0.02)
    raise AssertionError("the slow query never started")


def test_a_paused_warehouse_stops_answering_and_answers_again_after_resume(tmp_path: Path) -> None:
    with WarehouseProcess(free_port(), tmp_path / "data") as proc:
        proc.pause()
        try:
            with pytest.raises(requests.Timeout):
                requests.post(proc.url, data=b"SELECT 1", timeout=1)
        finally:
            proc.resume()
        assert requests.post(proc.url, data=b"SELECT 1", timeout=10).text == "1\n"


def test_a_second_warehouse_on_the_same_data_dir_fails_at_start_with_the_reason(tmp_path: Path) -> None:
    with WarehouseProcess(free_port(), tmp_path / "data"):
        second = WarehouseProcess(free_port(), tmp_path / "data", log_path=tmp_path / "second.log")
        with pytest.raises(WarehouseStartError) as caught:
            second.start()
    assert "owned by another warehouse process" in str(caught.value)


def test_a_port_in_use_is_named_in_the_error(warehouse_process: WarehouseProcess, tmp_path: Path) -> None:
    with pytest.raises(WarehouseStartError, match=str(warehouse_process.port)):
        WarehouseProcess(warehouse_process.port, tmp_path / "data").start()
