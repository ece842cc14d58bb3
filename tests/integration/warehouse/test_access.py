"""The warehouse refuses what ClickHouse's access rules would: real ``tickpipe warehouse`` processes.

One statement per request for every statement kind; no file, network or program sources unless
``user_files_dir`` allows files (and then only inside it); a GET of invalid SQL answers the syntax
error; no listening beyond loopback without a password.
"""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from infra.broker import free_port
from warehouse.process import WarehouseProcess, WarehouseStartError

pytestmark = [pytest.mark.integration, pytest.mark.local_backend, pytest.mark.timeout(120)]


def _post(url: str, sql: str, **params: str) -> requests.Response:
    return requests.post(url, params=params, data=sql.encode(), timeout=30)


def _table() -> str:
    return f"u_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def files_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WarehouseProcess, Path]]:
    base = tmp_path_factory.mktemp("files_warehouse")
    files = base / "user_files"
    files.mkdir()
    proc = WarehouseProcess(free_port(), base / "data", log_path=base / "warehouse.log",
                            settings_env={"TICKPIPE_WAREHOUSE__USER_FILES_DIR": str(files),
                                          "TICKPIPE_WAREHOUSE__MAX_DECOMPRESSED_BYTES": str(8 << 20),
                                          "TICKPIPE_WAREHOUSE__ALLOW_NETWORK_SOURCES": "true"})
    with proc:
        yield proc, files


@pytest.mark.parametrize("tail", ["; DROP TABLE {t}", ";\nDROP TABLE {t}", "; DROP TABLE {t};", " /* x */ ; DROP TABLE {t}"])
def test_an_insert_followed_by_another_statement_runs_neither(warehouse_process: WarehouseProcess, tail: str) -> None:
    url, name = warehouse_process.url, _table()
    assert _post(url, f"CREATE TABLE {name} (n UInt8) ENGINE = Memory").status_code == 200

    refused = _post(url, f"INSERT INTO {name} VALUES (1)" + tail.format(t=name))

    assert refused.status_code == 400
    assert refused.headers["X-ClickHouse-Exception-Code"] == "62"
    assert "Multi-statements are not allowed" in refused.text
    assert _post(url, f"SELECT count() FROM {name}").text == "0\n"


def test_a_create_followed_by_a_drop_runs_neither(warehouse_process: WarehouseProcess) -> None:
    url, name = warehouse_process.url, _table()
    assert _post(url, f"CREATE TABLE {name} (n UInt8) ENGINE = Memory").status_code == 200

    refused = _post(url, f"CREATE TABLE {name}_2 (n UInt8) ENGINE = Memory; DROP TABLE {name}")

    assert refused.headers["X-ClickHouse-Exception-Code"] == "62"
    assert _post(url, f"EXISTS TABLE {name}").text == "1\n"
    assert _post(url, f"EXISTS TABLE {name}_2").text == "0\n"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        "SELECT * FROM FILE('/etc/hostname', 'LineAsString')",
        "SELECT file('/etc/hostname')",
        "SELECT * FROM `file`('/etc/hostname', 'LineAsString')",
        "SELECT * FROM `/etc/hostname`",
        "SELECT * FROM \"/etc/hostname\"",
        "SELECT * FROM '/etc/hostname'",
        "SELECT * FROM default.`/etc/hostname`",
        "DESCRIBE '/etc/hostname'",
        "SELECT * FROM numbers(1) AS n JOIN '/etc/hostname' AS h ON 1",
        "SELECT * FROM filesystem('/etc')",
        "SELECT * FROM url('http://127.0.0.1:9/x', 'CSV', 'a String')",
        "SELECT * FROM s3('http://127.0.0.1:9/b/k.csv', 'CSV', 'a String')",
        "SELECT * FROM remote('127.0.0.1:9', system.one)",
        "SELECT * FROM executable('x.sh', 'CSV', 'a String')",
        "SELECT * FROM python('x')",
        "SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')",
        "SELECT * FROM sqlite('/etc/hostname', 't')",
        "CREATE TABLE leak (a String) ENGINE = File(LineAsString, '/etc/hostname')",
        "CREATE TABLE leak (a String) ENGINE = URL('http://127.0.0.1:9/x', CSV)",
        "CREATE DATABASE leak ENGINE = Filesystem('/etc')",
        ("CREATE DICTIONARY leak (k UInt64, v String) PRIMARY KEY k SOURCE(FILE(PATH '/etc/hostname' FORMAT 'CSV')) "
         "LAYOUT(FLAT()) LIFETIME(0)"),
        ("CREATE DICTIONARY leak (k UInt64, v String) PRIMARY KEY k SOURCE(HTTP(URL 'http://127.0.0.1:9' FORMAT 'CSV')) "
         "LAYOUT(FLAT()) LIFETIME(0)"),
        "CREATE TABLE leak (a UInt8) ENGINE = MergeTree ORDER BY a SETTINGS disk = disk(type = local, path = '/tmp/')",
        "SELECT 1 INTO OUTFILE '/tmp/tickpipe-leak.txt'",
        "INSERT INTO t FROM INFILE '/etc/hostname' FORMAT LineAsString",
        "SYSTEM SHUTDOWN",
        "SYSTEM KILL",
        "SELECT * FROM file('/et\\x63/hostname', 'LineAsString')",
        "SELECT * FROM file($$/etc/hostname$$, 'LineAsString')",
        "SELECT * FROM /* c */ file /* d */ ('/etc/hostname', 'LineAsString')",
    ],
)
def test_sources_beyond_the_store_are_refused_like_a_user_without_the_grant(
    warehouse_process: WarehouseProcess, sql: str
) -> None:
    refused = _post(warehouse_process.url, sql)

    assert refused.status_code != 200
    assert refused.headers["X-ClickHouse-Exception-Code"] == "497", refused.text
    assert "ACCESS_DENIED" in refused.text
    assert requests.get(f"{warehouse_process.url}/ping", timeout=10).text == "Ok.\n"


def test_values_rows_are_checked_too(warehouse_process: WarehouseProcess) -> None:
    url, name = warehouse_process.url, _table()
    _post(url, f"CREATE TABLE {name} (s String) ENGINE = Memory")

    refused = _post(url, f"INSERT INTO {name} VALUES ('a'), (file('/etc/hostname'))")

    assert refused.headers["X-ClickHouse-Exception-Code"] == "497"
    assert _post(url, f"SELECT count() FROM {name}").text == "0\n"


def test_a_relative_table_name_never_reaches_the_working_directory(warehouse_process: WarehouseProcess) -> None:
    # clickhouse-local resolves an unknown table name against its working directory; the warehouse runs in an empty one
    answer = _post(warehouse_process.url, "SELECT * FROM `pyproject.toml`")

    assert answer.headers["X-ClickHouse-Exception-Code"] == "60"


def test_another_sql_dialect_is_refused(warehouse_process: WarehouseProcess) -> None:
    by_url = _post(warehouse_process.url, "SELECT 1", dialect="prql")
    by_set = _post(warehouse_process.url, "SET dialect = 'kusto'")

    assert by_url.headers["X-ClickHouse-Exception-Code"] == "497"
    assert by_set.headers["X-ClickHouse-Exception-Code"] == "497"


@pytest.mark.parametrize("sql", ["FOO BAR", "SELEC 1", "DROP TABLE", "INSERT INTO VALUES"])
def test_a_get_of_invalid_sql_answers_the_syntax_error(warehouse_process: WarehouseProcess, sql: str) -> None:
    answer = requests.get(warehouse_process.url, params={"query": sql}, timeout=10)

    assert answer.status_code == 400
    assert answer.headers["X-ClickHouse-Exception-Code"] == "62"
    assert answer.text.startswith("Code: 62. DB::Exception: Syntax error")
    assert "formatQuery" not in answer.text


def test_a_get_of_valid_modifying_sql_still_answers_readonly(warehouse_process: WarehouseProcess) -> None:
    answer = requests.get(warehouse_process.url, params={"query": f"DROP TABLE IF EXISTS {_table()}"}, timeout=10)

    assert answer.headers["X-ClickHouse-Exception-Code"] == "164"


def test_with_a_user_files_dir_file_sources_work_inside_it_only(files_warehouse: tuple[WarehouseProcess, Path]) -> None:
    proc, files = files_warehouse
    (files / "prices.csv").write_text("1,a\n2,b\n")

    absolute = _post(proc.url, f"SELECT sum(c1) FROM file('{files}/prices.csv', 'CSV')")
    relative = _post(proc.url, "SELECT count() FROM file('prices.csv', 'CSV')")
    as_table = _post(proc.url, "SELECT count() FROM `prices.csv`")
    written = _post(proc.url, "INSERT INTO FUNCTION file('out.csv', 'CSV', 'n UInt8') SELECT 7")
    outside = _post(proc.url, "SELECT * FROM file('/etc/hostname', 'LineAsString')")
    escaping = _post(proc.url, f"SELECT * FROM file('{files}/../data/warehouse.lock', 'LineAsString')")

    assert (absolute.text, relative.text, as_table.text) == ("3\n", "2\n", "2\n")
    assert written.status_code == 200 and (files / "out.csv").read_text() == "7\n"
    assert [r.headers["X-ClickHouse-Exception-Code"] for r in (outside, escaping)] == ["497"] * 2


def test_with_network_sources_allowed_url_reaches_a_host_but_programs_stay_refused(
    files_warehouse: tuple[WarehouseProcess, Path]
) -> None:
    proc, _ = files_warehouse
    # the warehouse's own HTTP interface is a host url() can reach
    own = f"{proc.url}/?query=SELECT%2042"

    fetched = _post(proc.url, f"SELECT * FROM url('{own}', 'TSV', 'x UInt8')")
    program = _post(proc.url, "SELECT * FROM executable('x.sh', 'CSV', 'a String')")
    code = _post(proc.url, "SELECT * FROM python('x')")

    assert fetched.text == "42\n", fetched.text
    assert [r.headers["X-ClickHouse-Exception-Code"] for r in (program, code)] == ["497"] * 2


def test_a_compressed_body_inflating_past_the_limit_is_refused_and_the_server_stays(
    files_warehouse: tuple[WarehouseProcess, Path]
) -> None:
    proc, _ = files_warehouse
    bomb = gzip.compress(b"SELECT '" + b"0" * (256 << 20) + b"'")  # 256 MiB of SQL in well under 1 MiB

    refused = requests.post(proc.url, data=bomb, headers={"Content-Encoding": "gzip"}, timeout=60)

    assert refused.headers["X-ClickHouse-Exception-Code"] == "271"
    assert _post(proc.url, "SELECT 1").text == "1\n"


def test_listening_beyond_loopback_without_a_password_refuses_to_start(tmp_path: Path) -> None:
    proc = WarehouseProcess(free_port(), tmp_path / "data", host="0.0.0.0", log_path=tmp_path / "open.log")

    with pytest.raises(WarehouseStartError, match="exited with 1"):
        proc.start()

    assert "refusing to listen on 0.0.0.0 without a password" in (tmp_path / "open.log").read_text()


def test_listening_beyond_loopback_with_a_password_starts(tmp_path: Path) -> None:
    with WarehouseProcess(free_port(), tmp_path / "data", host="0.0.0.0", user="analyst", password="s3cret",
                          log_path=tmp_path / "locked.log") as proc:
        answer = requests.post(proc.url, data=b"SELECT 1", auth=("analyst", "s3cret"), timeout=10)

    assert answer.text == "1\n"
