"""The warehouse's request parsing, body decoding, credentials and error mapping (pure, no sockets)."""

from __future__ import annotations

import gzip
import zlib

import lz4.frame
import pytest
from clickhouse_connect.driver.compression import _zstd_compress
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.protocol import (
    Credentials,
    ProtocolError,
    check_credentials,
    check_method,
    content_type_of,
    credentials_of,
    decompress_body,
    error_text,
    http_status_of_code,
    output_format,
    parse_request,
)


@settings(max_examples=200)
@given(data=st.binary(max_size=512))
def test_native_data_after_a_url_statement_is_kept_byte_for_byte(data: bytes) -> None:
    statement = parse_request({"query": "INSERT INTO t FORMAT Native"}, data)

    assert statement.sql == "INSERT INTO t"
    assert statement.insert_format == "Native"
    assert statement.insert_data == data


@settings(max_examples=200)
@given(data=st.binary(max_size=512))
def test_native_data_after_the_statement_line_in_the_body_is_kept_byte_for_byte(data: bytes) -> None:
    # clickhouse-connect's insert body: statement, newline, binary block
    statement = parse_request({}, b"INSERT INTO db.t (`a`, `b`) FORMAT Native\n" + data)

    assert statement.sql == "INSERT INTO db.t (`a`, `b`)"
    assert statement.insert_data == data


def test_insert_settings_clause_is_split_from_the_head_for_from_infile() -> None:
    statement = parse_request(
        {}, b"INSERT INTO t (a, `format`) SETTINGS insert_deduplication_token = 'x;y' FORMAT JSONEachRow\n{\"a\":1}"
    )

    assert statement.sql == "INSERT INTO t (a, `format`)"
    assert statement.insert_settings_clause == "SETTINGS insert_deduplication_token = 'x;y'"
    assert statement.insert_format == "JSONEachRow"
    assert statement.insert_data == b'{"a":1}'


def test_insert_after_a_comment_and_with_a_lowercase_format_keyword_is_recognised() -> None:
    statement = parse_request({}, b"-- load\n/* trades */ insert into t format CSV\n1,2\n")

    assert statement.insert_format == "CSV"
    assert statement.insert_data == b"1,2\n"


@pytest.mark.parametrize(
    "sql", [b"INSERT INTO t VALUES (1, 'FORMAT x')", b"INSERT INTO t SELECT * FROM s WHERE format IN (1)"]
)
def test_inserts_without_a_data_part_run_as_plain_statements(sql: bytes) -> None:
    statement = parse_request({}, sql)

    assert statement.is_insert
    assert statement.insert_format is None
    assert statement.sql == sql.decode()


def test_url_parameters_split_into_settings_bound_parameters_and_transport_options() -> None:
    params = {
        "query": "SELECT {x:UInt8}", "database": "analyst", "default_format": "JSON", "param_x": "1",
        "max_threads": "2", "session_id": "abc", "wait_end_of_query": "1", "client_protocol_version": "54405",
        "enable_http_compression": "1", "query_id": "q1",
    }

    statement = parse_request(params, b"")

    assert statement.settings == {"max_threads": "2"}
    assert statement.params == {"x": "1"}
    assert (statement.database, statement.default_format, statement.query_id) == ("analyst", "JSON", "q1")
    assert statement.kind == "select"


def test_url_statement_and_body_are_joined_as_clickhouse_does() -> None:
    assert parse_request({"query": "SELECT"}, b"42").sql == "SELECT\n42"


@pytest.mark.parametrize(
    ("params", "body", "code"),
    [({}, b"   \n", 62), ({"query": ""}, b"", 62), ({"max threads": "2", "query": "SELECT 1"}, b"", 36)],
)
def test_unusable_requests_are_refused_with_their_clickhouse_code(params: dict[str, str], body: bytes, code: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_request(params, body)

    assert caught.value.code == code
    assert str(caught.value).startswith(f"Code: {code}. DB::Exception: ")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [("SELECT 1 FORMAT JSONEachRow", "JSONEachRow"), ("SELECT 1 format Native;", "Native"), ("SELECT 1", "TSV")],
)
def test_output_format_is_the_format_clause_else_the_default(sql: str, expected: str) -> None:
    assert output_format(parse_request({"default_format": "TSV"}, sql.encode())) == expected


_CODECS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "zstd": _zstd_compress,
    "lz4": lz4.frame.compress,
}


@settings(max_examples=50)
@given(chunks=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=4), encoding=st.sampled_from(sorted(_CODECS)))
def test_every_content_encoding_round_trips_including_concatenated_frames(chunks: list[bytes], encoding: str) -> None:
    # clickhouse-connect compresses each Native block as its own frame (lz4, zstd)
    if encoding in ("lz4", "zstd"):
        body = b"".join(_CODECS[encoding](c) for c in chunks)
    else:
        body = _CODECS[encoding](b"".join(chunks))

    assert decompress_body(body, encoding) == b"".join(chunks)


def test_raw_deflate_and_identity_bodies_are_accepted() -> None:
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = raw.compress(b"SELECT 1") + raw.flush()

    assert decompress_body(body, "deflate") == b"SELECT 1"
    assert decompress_body(b"SELECT 1", "identity") == b"SELECT 1"


@pytest.mark.parametrize(("body", "encoding", "code"), [(b"not gzip", "gzip", 271), (b"x", "compress", 36)])
def test_undecodable_bodies_are_refused(body: bytes, encoding: str, code: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        decompress_body(body, encoding)

    assert caught.value.code == code


def test_credentials_come_from_headers_then_url_then_basic_auth() -> None:
    headers = {"X-ClickHouse-User": "h", "X-ClickHouse-Key": "hk"}
    url = {"user": "u", "password": "uk"}

    assert credentials_of(url, headers, ("b", "bk")) == Credentials("h", "hk", True)
    assert credentials_of(url, {}, ("b", "bk")) == Credentials("u", "uk", True)
    assert credentials_of({}, {}, ("b", "bk")) == Credentials("b", "bk", True)
    assert credentials_of({}, {}, None) == Credentials("default", "", False)


def test_a_password_setting_requires_the_matching_user_and_password() -> None:
    check_credentials(Credentials("default", "", False), "default", "")  # no password set: open
    check_credentials(Credentials("analyst", "pw", True), "analyst", "pw")
    with pytest.raises(ProtocolError) as wrong:
        check_credentials(Credentials("analyst", "nope", True), "analyst", "pw")
    with pytest.raises(ProtocolError) as missing:
        check_credentials(Credentials("default", "", False), "analyst", "pw")

    assert (wrong.value.code, http_status_of_code(wrong.value.code)) == (516, 403)
    assert (missing.value.code, http_status_of_code(missing.value.code)) == (194, 401)


def test_get_refuses_modifying_statements_like_clickhouse_readonly() -> None:
    check_method("GET", parse_request({}, b"SELECT 1"))
    check_method("GET", parse_request({}, b"SET max_threads = 1"))
    check_method("POST", parse_request({}, b"CREATE TABLE t (a UInt8) ENGINE = Memory"))
    with pytest.raises(ProtocolError) as caught:
        check_method("GET", parse_request({}, b"INSERT INTO t FORMAT CSV\n1"))

    assert caught.value.code == 164


@pytest.mark.parametrize(("code", "status"), [(62, 400), (60, 404), (81, 404), (115, 404), (159, 408), (241, 500)])
def test_error_codes_map_to_clickhouse_http_statuses(code: int, status: int) -> None:
    assert http_status_of_code(code) == status


def test_engine_messages_are_reduced_to_the_clickhouse_exception_text() -> None:
    code, text = error_text("chdb: Code: 60. DB::Exception: Unknown table 'x'. (UNKNOWN_TABLE)")
    odd_code, odd_text = error_text("segfault-free surprise")

    assert (code, text) == (60, "Code: 60. DB::Exception: Unknown table 'x'. (UNKNOWN_TABLE)")
    assert odd_code == 1002 and odd_text.startswith("Code: 1002. DB::Exception: segfault-free surprise")


def test_content_types_follow_the_format() -> None:
    assert content_type_of("JSONEachRow").startswith("application/x-ndjson")
    assert content_type_of("Native") == "application/octet-stream"
    assert content_type_of("TabSeparated").startswith("text/tab-separated-values")
    assert content_type_of("Pretty") == "text/plain; charset=UTF-8"


@pytest.mark.parametrize("sql", [b"SELECT 1; SELECT 2", b"SELECT ';' AS x;\nDROP TABLE t", b"SELECT 1;;"])
def test_multi_statements_are_refused_as_clickhouse_does(sql: bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_request({}, sql)

    assert caught.value.code == 62
    assert "Multi-statements are not allowed" in str(caught.value)


@pytest.mark.parametrize("sql", [b"SELECT 1;", b"SELECT ';' AS x ; -- done\\n", b"SELECT 'a;b'", b"SELECT (1;"])
def test_one_statement_with_a_trailing_semicolon_or_quoted_semicolons_passes(sql: bytes) -> None:
    assert parse_request({}, sql).kind == "select"
