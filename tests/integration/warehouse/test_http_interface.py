"""The warehouse's ClickHouse HTTP interface, against the real ``tickpipe warehouse`` process.

clickhouse-connect's own HTTP client, raw HTTP (requests) and concurrent clients talk to the session
warehouse (``warehouse_url``) over loopback; nothing is mocked. With a Docker engine the same tests
also run against a ClickHouse server container, which keeps the warehouse honest: what passes here
is what ClickHouse itself does (``local_backend`` marks the warehouse-only endpoints).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from decimal import Decimal

import clickhouse_connect
import numpy as np
import pandas as pd
import pytest
import requests
from clickhouse_connect.driver.exceptions import DatabaseError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

_names = itertools.count()


def _table() -> str:
    return f"t_{next(_names)}_{uuid.uuid4().hex[:8]}"


def _client(url: str, **kwargs: object) -> clickhouse_connect.driver.Client:
    host, port = url.removeprefix("http://").split(":")
    return clickhouse_connect.get_client(host=host, port=int(port), **kwargs)


def _sql(url: str, sql: str, **params: str) -> requests.Response:
    return requests.post(url, params=params, data=sql.encode(), timeout=30)


def _frame(rows: int) -> pd.DataFrame:
    prices = [Decimal("0.00000001"), Decimal("123456789.12345678"), Decimal("-42.000000000000000001"), Decimal(0)]
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype="uint64"),
            "price": [prices[i % len(prices)] for i in range(rows)],
            "ts": pd.to_datetime(1_700_000_000_000_000_000 + np.arange(rows, dtype="int64") * 1_000_003, unit="ns"),
            "symbol": ["BTCUSDT" if i % 3 else "ETHUSDT" for i in range(rows)],
            "qty": pd.array([None if i % 7 == 0 else i for i in range(rows)], dtype="Int32"),
            "tags": [[f"v{i % 5}", "x"] if i % 4 else [] for i in range(rows)],
        }
    )


_DDL = """CREATE TABLE {name} (
    id UInt64, price Decimal(38, 18), ts DateTime64(9), symbol LowCardinality(String),
    qty Nullable(Int32), tags Array(String)
) ENGINE = MergeTree ORDER BY id"""


def _assert_same_frame(back: pd.DataFrame, sent: pd.DataFrame) -> None:
    assert list(back.columns) == list(sent.columns)
    assert len(back) == len(sent)
    assert back["id"].tolist() == sent["id"].tolist()
    assert back["price"].tolist() == sent["price"].tolist()
    assert back["ts"].astype("int64").tolist() == sent["ts"].astype("int64").tolist()
    assert back["symbol"].tolist() == sent["symbol"].tolist()
    assert back["qty"].isna().tolist() == sent["qty"].isna().tolist()
    assert back["qty"].dropna().astype(int).tolist() == sent["qty"].dropna().astype(int).tolist()
    assert [list(t) for t in back["tags"]] == sent["tags"].tolist()


def test_ping_and_root_answer_ok(warehouse_url: str) -> None:
    assert requests.get(f"{warehouse_url}/ping", timeout=5).text == "Ok.\n"
    assert requests.get(f"{warehouse_url}/", timeout=5).text == "Ok.\n"
    assert requests.get(f"{warehouse_url}/replicas_status", timeout=5).text == "Ok.\n"
    assert requests.head(f"{warehouse_url}/ping", timeout=5).status_code == 200


def test_clickhouse_connect_inserts_100k_rows_and_query_df_reads_them_back_unchanged(warehouse_url: str) -> None:
    # Arrange
    client = _client(warehouse_url)
    name = _table()
    client.command(_DDL.format(name=name))
    sent = _frame(100_000)

    # Act
    summary = client.insert_df(name, sent)
    back = client.query_df(f"SELECT * FROM {name} ORDER BY id")

    # Assert
    assert summary.written_rows == 100_000
    _assert_same_frame(back, sent)
    exact = client.query(f"SELECT toString(price) FROM {name} WHERE id IN (0, 1) ORDER BY id").result_rows
    assert exact == [("0.00000001",), ("123456789.12345678",)]


@pytest.mark.parametrize("compress", [True, "lz4", "zstd", "gzip", False])
def test_every_compression_clickhouse_connect_sends_is_decoded(warehouse_url: str, compress: object) -> None:
    client = _client(warehouse_url, compress=compress)
    name = _table()
    client.command(_DDL.format(name=name))
    rows = [[i, Decimal("0.00000001") * i, pd.Timestamp(1_700_000_000_123_456_789 + i, unit="ns"), "ETHUSDT", None, ["a"]]
            for i in range(5_000)]

    client.insert(name, rows, column_names=["id", "price", "ts", "symbol", "qty", "tags"])

    result = client.query(f"SELECT count(), sum(price), max(id) FROM {name}").result_rows
    assert result == [(5_000, Decimal("0.00000001") * sum(range(5_000)), 4_999)]


def test_raw_http_json_each_row_insert_and_select(warehouse_url: str) -> None:
    name = _table()
    assert _sql(warehouse_url, f"CREATE TABLE {name} (symbol String, price Decimal(38, 18), n UInt32) "
                               "ENGINE = MergeTree ORDER BY n").status_code == 200
    lines = [{"symbol": "BTCUSDT", "price": "123456789.12345678", "n": 1},
             {"symbol": "ETHUSDT", "price": "0.00000001", "n": 2}]
    body = f"INSERT INTO {name} FORMAT JSONEachRow\n" + "\n".join(json.dumps(x) for x in lines)

    inserted = _sql(warehouse_url, body)
    selected = _sql(warehouse_url, f"SELECT symbol, toString(price) AS price, n FROM {name} ORDER BY n FORMAT JSONEachRow")

    assert inserted.status_code == 200, inserted.text
    assert json.loads(inserted.headers["X-ClickHouse-Summary"])["written_rows"] == "2"
    assert selected.status_code == 200
    assert selected.headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert [json.loads(x) for x in selected.text.splitlines()] == lines


def test_csv_and_tsv_inserts_with_the_statement_in_the_url_or_in_the_body(warehouse_url: str) -> None:
    name = _table()
    _sql(warehouse_url, f"CREATE TABLE {name} (n UInt32, s String) ENGINE = MergeTree ORDER BY n")

    csv_url = requests.post(warehouse_url, params={"query": f"INSERT INTO {name} FORMAT CSV"},
                            data=b'1,"a,b"\n2,plain\n', timeout=10)
    tsv_body = _sql(warehouse_url, f"INSERT INTO {name} FORMAT TSV\n3\ttab\\tbed\n4\tx\n")
    tsv_url = requests.post(warehouse_url, params={"query": f"INSERT INTO {name} (n, s) FORMAT TabSeparated"},
                            data=b"5\tfive\n", timeout=10)

    assert [r.status_code for r in (csv_url, tsv_body, tsv_url)] == [200, 200, 200]
    got = requests.get(warehouse_url, params={"query": f"SELECT n, s FROM {name} ORDER BY n FORMAT JSONCompactEachRow"},
                       timeout=10)
    assert [json.loads(x) for x in got.text.splitlines()] == [[1, "a,b"], [2, "plain"], [3, "tab\tbed"], [4, "x"],
                                                             [5, "five"]]


def test_get_with_query_database_default_format_settings_and_bound_params(warehouse_url: str) -> None:
    requests.post(warehouse_url, data=b"CREATE DATABASE IF NOT EXISTS analyst", timeout=10)

    response = requests.get(
        warehouse_url,
        params={
            "query": "SELECT currentDatabase() AS db, toUInt8(getSetting('max_threads')) AS mt, {x:UInt8} + 1 AS x",
            "database": "analyst", "default_format": "JSONEachRow", "max_threads": "3", "param_x": "41",
            "session_id": "ignored", "wait_end_of_query": "1", "client_protocol_version": "54405",
            "send_progress_in_http_headers": "1",
        },
        timeout=10,
    )

    assert response.status_code == 200, response.text
    assert json.loads(response.text) == {"db": "analyst", "mt": 3, "x": 42}
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    follow_up = requests.get(warehouse_url, params={"query": "SELECT currentDatabase(), getSetting('max_threads')"},
                             timeout=10)
    assert follow_up.text.split("\t")[0] == "default"  # one request's database/settings do not leak


def test_usual_headers_are_sent(warehouse_url: str) -> None:
    # wait_end_of_query=1: the whole result is buffered, so the summary holds the final figures
    response = requests.get(warehouse_url, params={"query": "SELECT 1", "query_id": "qid-1", "wait_end_of_query": "1"},
                            timeout=10)

    assert response.headers["X-ClickHouse-Query-Id"] == "qid-1"
    assert response.headers["X-ClickHouse-Format"] == "TabSeparated"
    assert response.headers["X-ClickHouse-Timezone"]
    assert response.headers["X-ClickHouse-Server-Display-Name"]
    assert json.loads(response.headers["X-ClickHouse-Summary"])["read_rows"] == "1"
    assert response.text == "1\n"


def test_malformed_sql_returns_the_clickhouse_error_and_the_server_keeps_serving(warehouse_url: str) -> None:
    bad = _sql(warehouse_url, "SELEC 1 FROMM nowhere")
    missing = _sql(warehouse_url, "SELECT * FROM no_such_table_at_all")
    after = _sql(warehouse_url, "SELECT 40 + 2")

    assert bad.status_code == 400  # ClickHouse answers SYNTAX_ERROR with 400
    assert bad.text.startswith("Code: 62. DB::Exception: Syntax error")
    assert "(SYNTAX_ERROR)" in bad.text
    assert bad.headers["X-ClickHouse-Exception-Code"] == "62"
    assert missing.status_code == 404
    assert missing.text.startswith("Code: 60. DB::Exception:")
    assert after.status_code == 200 and after.text == "42\n"


def test_clickhouse_connect_surfaces_engine_errors_with_their_code(warehouse_url: str) -> None:
    client = _client(warehouse_url)

    with pytest.raises(DatabaseError) as caught:
        client.query("SELECT throwIf(1, 'boom')")

    assert "boom" in str(caught.value)
    assert client.command("SELECT 7") == 7


def test_a_writer_and_an_analyst_are_served_at_the_same_time(warehouse_url: str) -> None:
    name = _table()
    _client(warehouse_url).command(_DDL.format(name=name))
    batches, batch_rows = 15, 4_000
    errors: list[BaseException] = []
    seen_counts: list[int] = []
    writer_done = threading.Event()

    def writer() -> None:
        try:
            client = _client(warehouse_url)
            for b in range(batches):
                frame = _frame(batch_rows)
                frame["id"] = frame["id"] + b * batch_rows
                client.insert_df(name, frame)
        except BaseException as exc:  # noqa: BLE001 (collected and asserted below)
            errors.append(exc)
        finally:
            writer_done.set()

    def analyst() -> None:
        try:
            client = _client(warehouse_url)
            while not writer_done.is_set():
                seen_counts.append(int(client.command(f"SELECT count() FROM {name}")))
                client.query_df(f"SELECT symbol, sum(price) FROM {name} GROUP BY symbol")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=analyst)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)

    assert errors == []
    assert seen_counts, "the analyst never got an answer while the writer was inserting"
    assert seen_counts == sorted(seen_counts)
    assert int(_client(warehouse_url).command(f"SELECT count() FROM {name}")) == batches * batch_rows


def test_insert_deduplication_token_drops_a_retried_batch(warehouse_url: str) -> None:
    client = _client(warehouse_url)
    name = _table()
    client.command(f"CREATE TABLE {name} (id UInt64) ENGINE = MergeTree ORDER BY id "
                   "SETTINGS non_replicated_deduplication_window = 1000")
    rows = [[i] for i in range(10)]

    for _ in range(2):
        client.insert(name, rows, column_names=["id"], settings={"insert_deduplication_token": "batch-1"})
    client.insert(name, rows, column_names=["id"], settings={"insert_deduplication_token": "batch-2"})

    assert client.command(f"SELECT count() FROM {name}") == 20


@pytest.mark.local_backend
def test_health_and_metrics_on_the_same_port(warehouse_url: str) -> None:
    _sql(warehouse_url, "SELECT 1")

    health = requests.get(f"{warehouse_url}/health", timeout=10)
    metrics = requests.get(f"{warehouse_url}/metrics", timeout=10).text

    assert health.status_code == 200 and health.json()["ok"] is True
    assert 'warehouse_requests_total{kind="select",status="200"}' in metrics
    assert "warehouse_request_seconds_bucket" in metrics
    assert "warehouse_inserted_rows_total" in metrics


def test_set_and_use_without_a_session_last_for_their_own_request_only(warehouse_url: str) -> None:
    assert _sql(warehouse_url, "SET max_result_rows = 7").status_code == 200
    assert _sql(warehouse_url, "USE system").status_code == 200

    # more requests than the warehouse has engine handles, so every handle answers at least once
    answers = {_sql(warehouse_url, "SELECT currentDatabase(), getSetting('max_result_rows')").text for _ in range(12)}

    assert answers == {"default\t0\n"}


def test_get_refuses_a_modifying_statement(warehouse_url: str) -> None:
    name = _table()
    _sql(warehouse_url, f"CREATE TABLE {name} (n UInt8) ENGINE = MergeTree ORDER BY n")

    refused = requests.get(warehouse_url, params={"query": f"INSERT INTO {name} VALUES (1)"}, timeout=10)

    assert refused.status_code != 200
    assert refused.headers["X-ClickHouse-Exception-Code"] == "164"
    assert "readonly" in refused.text
    assert _sql(warehouse_url, f"SELECT count() FROM {name}").text == "0\n"


def test_multi_statements_are_refused_and_nothing_of_them_runs(warehouse_url: str) -> None:
    name = _table()

    refused = _sql(warehouse_url, f"SELECT 1; CREATE TABLE {name} (n UInt8) ENGINE = Memory")

    assert refused.status_code == 400
    assert refused.headers["X-ClickHouse-Exception-Code"] == "62"
    assert "Multi-statements are not allowed" in refused.text
    assert _sql(warehouse_url, f"EXISTS TABLE {name}").text == "0\n"


def test_a_large_result_is_streamed_block_by_block(warehouse_url: str) -> None:
    sql = "SELECT number, toString(number * 3) FROM numbers(1500000) FORMAT TSV"

    with requests.post(warehouse_url, data=sql.encode(), stream=True, timeout=60) as response:
        lines = sum(chunk.count(b"\n") for chunk in response.iter_content(1 << 16))

    assert response.status_code == 200
    assert response.headers.get("Transfer-Encoding") == "chunked"
    assert lines == 1_500_000


def test_clickhouse_connect_block_stream_reads_every_row(warehouse_url: str) -> None:
    client = _client(warehouse_url)

    with client.query_row_block_stream("SELECT number FROM numbers(300000)") as stream:
        total = sum(row[0] for block in stream for row in block)

    assert total == sum(range(300_000))


@pytest.mark.local_backend
def test_an_error_after_the_first_blocks_ends_the_body_with_the_exception(warehouse_url: str) -> None:
    sql = "SELECT throwIf(number = 300000, 'late failure') FROM numbers(1000000) SETTINGS max_block_size = 65536"

    response = requests.post(warehouse_url, data=sql.encode(), timeout=60)

    assert response.status_code == 200  # the status line went out with the first block
    assert response.text.startswith("0\n")
    assert "Code: 395. DB::Exception:" in response.text.splitlines()[-1]
    assert _sql(warehouse_url, "SELECT 1").text == "1\n"


@pytest.mark.local_backend
def test_clients_that_hang_up_mid_stream_give_their_engine_handles_back(warehouse_url: str) -> None:
    sql = b"SELECT number FROM numbers(100000000) SETTINGS max_block_size = 8192"
    for _ in range(8):  # twice the warehouse's engine handles
        with requests.post(warehouse_url, data=sql, stream=True, timeout=30) as response:
            assert next(response.iter_content(1024))

    assert _sql(warehouse_url, "SELECT 42").text == "42\n"
    deadline = time.monotonic() + 10
    while requests.get(f"{warehouse_url}/health", timeout=10).json()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert requests.get(f"{warehouse_url}/health", timeout=10).json()["in_flight"] == 0
