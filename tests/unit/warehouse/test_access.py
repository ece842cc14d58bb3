"""Source grants on SQL text (``warehouse.access``) and the lexer they read it with."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warehouse.access import SourcePolicy, check_settings, check_statement, check_values
from warehouse.protocol import ProtocolError, decompress_body, parse_request, tokens, unquote

CATALOGUE = ["file", "url", "s3", "remote", "executable", "numbers", "merge", "MergeTree", "File", "URL", "Memory",
             "Filesystem", "Atomic", "sqlite", "python"]
CLOSED = SourcePolicy.from_catalogue(CATALOGUE, None)


def _denied(sql: str, policy: SourcePolicy = CLOSED) -> bool:
    try:
        check_statement(sql, policy)
    except ProtocolError as exc:
        assert exc.code == 497
        return True
    return False


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM numbers(10)",
        "CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a",
        "CREATE TABLE t (a UInt8) ENGINE = Memory",
        "SELECT 'file(/etc/passwd)' AS `a/b` FROM t AS `x/y`",
        "SELECT count() AS `rows/s` FROM merge('tickpipe', '^md_')",
        "CREATE DICTIONARY d (k UInt64) PRIMARY KEY k SOURCE(CLICKHOUSE(TABLE 'src')) LAYOUT(FLAT()) LIFETIME(0)",
        "SELECT url_path FROM t WHERE s = '/etc/passwd'",
    ],
)
def test_statements_within_the_store_pass(sql: str) -> None:
    assert not _denied(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM file('/etc/passwd')",
        "SELECT * FROM `file`('/etc/passwd')",
        "SELECT * FROM URL('http://x')",
        "SELECT * FROM `/etc/passwd`",
        "SELECT * FROM default.`/etc/passwd`",
        "DESCRIBE TABLE '/etc/passwd'",
        "CREATE TABLE t (a String) ENGINE = File(CSV)",
        "CREATE DICTIONARY d (k UInt64) PRIMARY KEY k SOURCE(CLICKHOUSE(HOST 'evil' TABLE 'x')) LAYOUT(FLAT()) LIFETIME(0)",
        "SELECT * FROM python('x')",
        "SELECT catboostEvaluate('/m.bin', 1)",
        "SELECT 1 INTO OUTFILE 'x'",
        "SYSTEM SHUTDOWN",
        "SET dialect = 'prql'",
    ],
)
def test_sources_beyond_the_store_are_denied(sql: str) -> None:
    assert _denied(sql)


def test_a_source_the_engine_adds_later_is_denied_until_allowed() -> None:
    policy = SourcePolicy.from_catalogue([*CATALOGUE, "shinyNewLake"], None)

    assert _denied("SELECT * FROM shinyNewLake('x')", policy)


def test_file_sources_stay_inside_the_user_files_dir(tmp_path: Path) -> None:
    policy = SourcePolicy.from_catalogue(CATALOGUE, tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "link").symlink_to("/etc")

    assert not _denied(f"SELECT * FROM file('{tmp_path}/in/a.csv')", policy)
    assert not _denied("SELECT * FROM file('in/*.csv', 'CSV')", policy)
    assert not _denied("CREATE TABLE t (a String) ENGINE = File(CSV, 'in/t.csv')", policy)
    assert _denied("SELECT * FROM file('/etc/passwd')", policy)
    assert _denied(f"SELECT * FROM file('{tmp_path}/../x')", policy)
    assert _denied("SELECT * FROM file('in/link/passwd')", policy)
    assert _denied("SELECT * FROM file(concat('/etc', '/passwd'))", policy)
    assert _denied("SELECT * FROM file(coll)", policy)
    assert _denied("SELECT * FROM url('http://x')", policy)


def _hex_escaped(path: str) -> str:
    return "'" + "".join(f"\\x{ord(c):02x}" for c in path) + "'"


@given(
    path=st.sampled_from(["/etc/passwd", "/proc/self/environ", "/root/.ssh/id_rsa"]),
    quoting=st.sampled_from(["plain", "hex", "heredoc", "doubled"]),
    name=st.sampled_from(["file", "FILE", "File", "`file`", '"file"']),
    gap=st.sampled_from(["", " ", "/* c */", "\n-- c\n", "# c\n"]),
)
def test_a_path_outside_is_denied_however_it_is_spelled(path: str, quoting: str, name: str, gap: str) -> None:
    literal = {"plain": f"'{path}'", "hex": _hex_escaped(path), "heredoc": f"$tag${path}$tag$",
               "doubled": "'" + path.replace("/", "/") + "'''"}[quoting]

    assert _denied(f"SELECT * FROM {name}{gap}({literal}, 'CSV')", SourcePolicy.from_catalogue(CATALOGUE, Path("/srv")))


def test_the_lexer_reads_heredocs_nested_comments_and_escapes() -> None:
    sql = b"SELECT $x$a';b$x$ /* /* ; */ ; */ '\\x41\\'' # ; c\n;"

    toks = tokens(sql, stop_after_format=False)

    assert [t.quote for t in toks] == [b"", b"$", b"'", b""]
    assert unquote(sql, toks[1]) == "a';b"
    assert unquote(sql, toks[2]) == "A'"


def test_a_semicolon_inside_a_heredoc_is_no_second_statement() -> None:
    assert parse_request({}, b"SELECT $$; DROP TABLE u$$").sql == "SELECT $$; DROP TABLE u$$"
    with pytest.raises(ProtocolError, match="Multi-statements"):
        parse_request({}, b"SELECT $$'$$; DROP TABLE u")


def test_only_clickhouse_sql_is_accepted_as_a_setting() -> None:
    check_settings({"dialect": "clickhouse", "max_threads": "1"})
    with pytest.raises(ProtocolError):
        check_settings({"dialect": "kusto"})


def test_a_body_inflating_past_the_limit_is_refused_before_it_is_whole() -> None:
    bomb = gzip.compress(bytes(64 << 20))  # 64 MiB of zeros in ~64 KiB

    with pytest.raises(ProtocolError) as caught:
        decompress_body(bomb, "gzip", limit=1 << 20)

    assert caught.value.code == 271 and "inflates past" in str(caught.value)
    assert decompress_body(gzip.compress(b"SELECT 1"), "gzip", limit=1 << 20) == b"SELECT 1"


def test_network_sources_can_be_allowed_but_code_sources_never() -> None:
    open_network = SourcePolicy.from_catalogue([*CATALOGUE, "executable"], None, network=True)

    assert not _denied("SELECT * FROM url('http://x')", open_network)
    assert not _denied("SELECT * FROM remote('h:9000', system.one)", open_network)
    assert _denied("SELECT * FROM executable('x.sh', 'CSV', 'a String')", open_network)
    assert _denied("SELECT * FROM python('x')", open_network)
    assert _denied("SELECT * FROM file('/etc/passwd')", open_network)


def test_values_rows_are_checked_without_lexing_plain_literals() -> None:
    plain = ", ".join(f"({i}, 'a;b', 1.5, NULL, [1, 2])" for i in range(1000))
    for rows in ("(1), (file('/etc/passwd'))", "(file /* c */ ('/etc/passwd'))", "(`file`('/etc/passwd'))",
                 "((SELECT * FROM '/etc/passwd'))", "(FILE($$/etc/passwd$$))"):
        try:
            check_values(rows, CLOSED)
        except ProtocolError as exc:
            assert exc.code == 497
        else:
            raise AssertionError(f"not refused: {rows}")

    check_values(plain, CLOSED)
