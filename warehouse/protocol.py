"""The ClickHouse HTTP protocol as plain data: no sockets, no engine.

Turns what arrives on the wire (URL parameters, headers, a possibly compressed body) into a
:class:`Statement` the engine can run, and maps engine errors back onto ClickHouse's HTTP status
codes. Everything here is pure so that it is unit-testable and shared by server and tests.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.compression import _lz4_decompressor, _zstd_decompressor

# URL parameters the HTTP layer consumes itself; everything else is a ClickHouse setting.
# Mirrors clickhouse-connect's own list of transport settings plus the HTTP interface's names.
TRANSPORT_PARAMS = frozenset(
    {
        "query", "database", "default_format", "user", "password", "quota_key", "query_id",
        "session_id", "session_timeout", "session_check", "compress", "decompress", "buffer_size",
        "wait_end_of_query", "client_protocol_version", "role", "send_progress_in_http_headers",
        "http_headers_progress_interval_ms", "enable_http_compression", "http_zlib_compression_level",
        "cancel_http_readonly_queries_on_client_close", "http_wait_end_of_query", "http_response_buffer_size",
    }
)

_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Error codes (ClickHouse src/Common/ErrorCodes.cpp) the HTTP layer raises itself.
UNKNOWN_FORMAT = 73
SYNTAX_ERROR = 62
BAD_ARGUMENTS = 36
REQUIRED_PASSWORD = 194
AUTHENTICATION_FAILED = 516
CANNOT_DECOMPRESS = 271
READONLY = 164
INVALID_SESSION_TIMEOUT = 374
SESSION_NOT_FOUND = 372
SESSION_IS_LOCKED = 373
MAX_SESSION_TIMEOUT_S = 3600.0
UNKNOWN_EXCEPTION = 1002

# ClickHouse's HTTPHandler ``exceptionCodeToHTTPStatus``, for the codes a local warehouse can produce.
_BAD_REQUEST_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        25,  # CANNOT_PARSE_ESCAPE_SEQUENCE
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        36,  # BAD_ARGUMENTS
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        62,  # SYNTAX_ERROR
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        167,  # TOO_DEEP_AST
        168,  # TOO_BIG_AST
        271,  # CANNOT_DECOMPRESS
        427,  # CANNOT_COMPILE_REGEXP
    }
)
_NOT_FOUND_CODES = frozenset(
    {
        46,  # UNKNOWN_FUNCTION
        47,  # UNKNOWN_IDENTIFIER
        50,  # UNKNOWN_TYPE
        56,  # UNKNOWN_STORAGE
        60,  # UNKNOWN_TABLE
        63,  # UNKNOWN_AGGREGATE_FUNCTION
        73,  # UNKNOWN_FORMAT
        81,  # UNKNOWN_DATABASE
        115,  # UNKNOWN_SETTING
    }
)
_HTTP_STATUS_OF_CODE: dict[int, int] = {
    REQUIRED_PASSWORD: 401,
    192: 403,  # UNKNOWN_USER
    193: 403,  # WRONG_PASSWORD
    AUTHENTICATION_FAILED: 403,
    512: 403,  # SET_NON_GRANTED_ROLE
    48: 501,  # NOT_IMPLEMENTED
    159: 408,  # TIMEOUT_EXCEEDED
    202: 503,  # TOO_MANY_SIMULTANEOUS_QUERIES
}

# Statements that produce a result set (and therefore an X-ClickHouse-Format header).
_RESULT_KEYWORDS = frozenset({b"SELECT", b"WITH", b"SHOW", b"DESCRIBE", b"DESC", b"EXISTS", b"EXPLAIN", b"CHECK", b"("})

_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "TabSeparatedWithNames": "text/tab-separated-values; charset=UTF-8",
    "TSVWithNames": "text/tab-separated-values; charset=UTF-8",
    "TabSeparatedWithNamesAndTypes": "text/tab-separated-values; charset=UTF-8",
    "TSVWithNamesAndTypes": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "CSVWithNames": "text/csv; charset=UTF-8; header=present",
    "JSON": "application/json; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
    "JSONCompactEachRow": "application/x-ndjson; charset=UTF-8",
}
# Output formats without a global header or footer: chdb's per-block output concatenates into one
# valid stream, so their results can be sent block by block.
STREAMABLE_FORMATS = frozenset(
    {
        "Native", "TabSeparated", "TSV", "TabSeparatedRaw", "TSVRaw", "CSV", "RowBinary",
        "JSONEachRow", "JSONLines", "NDJSON", "JSONCompactEachRow",
    }
)
# chdb streams only queries ("Streaming query is not supported for query: EXISTS ...").
STREAMABLE_KEYWORDS = frozenset({"SELECT", "WITH", "("})
_BINARY_FORMATS = frozenset({"Native", "RowBinary", "RowBinaryWithNames", "RowBinaryWithNamesAndTypes", "Parquet", "Arrow", "ArrowStream", "ORC", "Avro"})


class ProtocolError(Exception):
    """A request the HTTP layer rejects before it reaches the engine, with its ClickHouse code."""

    retriable = False

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(f"Code: {code}. DB::Exception: {message}. ({name})")
        self.code = code


@dataclass(frozen=True)
class Credentials:
    """User and password as the client sent them; ``supplied`` is False when it sent none."""

    user: str
    password: str
    supplied: bool


@dataclass(frozen=True)
class Statement:
    """One request, ready for the engine.

    ``sql`` is the statement text. For an ``INSERT ... FORMAT f`` with data, ``insert_data`` holds
    the (decompressed) data and ``sql`` is the statement head without the trailing ``FORMAT``
    clause, ``insert_format`` the format name, so the engine can feed the data from a file.
    """

    sql: str
    database: str | None
    default_format: str
    settings: dict[str, str]
    params: dict[str, str]
    query_id: str | None
    insert_format: str | None = None
    insert_data: bytes | None = None
    insert_settings_clause: str = ""
    kind: str = field(default="other")
    keyword: str = ""
    session_id: str | None = None
    session_timeout_s: float = 60.0
    session_check: bool = False
    method: str = "POST"
    values_data: str = ""

    @property
    def parsed_text(self) -> str:
        """What the engine's parser reads: the statement without its data (``VALUES`` rows, ``FORMAT`` data)."""
        if self.insert_format is not None:
            return f"{self.sql} {self.insert_settings_clause} FORMAT {self.insert_format}"
        if self.values_data:
            return self.sql[:len(self.sql) - len(self.values_data)]
        return self.sql

    @property
    def is_insert(self) -> bool:
        return self.kind == "insert"

    @property
    def changes_session(self) -> bool:
        """``SET``/``USE``: without an HTTP session they last for this request only, as in ClickHouse."""
        return self.keyword in ("SET", "USE")


def decompress_body(body: bytes, encoding: str | None, limit: int | None = None) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate, zstd, lz4 frame, identity), as ClickHouse does.

    With ``limit``, a body that inflates past ``limit`` bytes is refused as soon as it does (a
    small compressed body can stand for gigabytes), so the process never holds more than that.
    """
    if not body or not encoding or encoding.strip().lower() in ("", "identity"):
        return body
    enc = encoding.strip().lower()
    try:
        if enc in ("gzip", "x-gzip"):
            return _frames(body, lambda: zlib.decompressobj(16 + zlib.MAX_WBITS), limit, enc)
        if enc == "deflate":
            try:
                return _frames(body, zlib.decompressobj, limit, enc, one=True)
            except zlib.error:
                return _frames(body, lambda: zlib.decompressobj(-zlib.MAX_WBITS), limit, enc, one=True)
        if enc == "zstd":
            return _frames(body, _zstd_decompressor, limit, enc)
        if enc == "lz4":
            # clickhouse-connect compresses each Native block as its own LZ4 frame, concatenated
            return _frames(body, _lz4_decompressor, limit, enc)
    except ProtocolError:
        raise
    except Exception as exc:  # every codec has its own error type
        raise ProtocolError(CANNOT_DECOMPRESS, "CANNOT_DECOMPRESS", f"Cannot decompress {enc} body: {exc}") from exc
    raise ProtocolError(BAD_ARGUMENTS, "BAD_ARGUMENTS", f"Unknown HTTP compression method '{encoding}'")


def _frames(body: bytes, decompressor: Callable[[], Any], limit: int | None, enc: str, one: bool = False) -> bytes:
    # concatenated frames (gzip members, zstd/lz4 frames), each to its end, never past ``limit`` bytes
    out: list[bytes] = []
    total = 0
    rest = body
    while rest:
        d = decompressor()
        chunk = d.decompress(rest) if limit is None else d.decompress(rest, limit - total + 1)
        total += len(chunk)
        if limit is not None and total > limit:
            raise ProtocolError(CANNOT_DECOMPRESS, "CANNOT_DECOMPRESS",
                                f"Cannot decompress {enc} body: it inflates past {limit} bytes")
        out.append(chunk)
        if not d.eof:
            raise ValueError(f"truncated {enc} stream")
        rest = b"" if one else d.unused_data
    return b"".join(out)


def credentials_of(params: Mapping[str, str], headers: Mapping[str, str], basic: tuple[str, str] | None) -> Credentials:
    """Read credentials the three ways ClickHouse accepts them: headers, URL parameters, basic auth."""
    if "X-ClickHouse-User" in headers or "X-ClickHouse-Key" in headers:
        return Credentials(headers.get("X-ClickHouse-User", "default"), headers.get("X-ClickHouse-Key", ""), True)
    if "user" in params or "password" in params:
        return Credentials(params.get("user", "default"), params.get("password", ""), True)
    if basic is not None:
        return Credentials(basic[0] or "default", basic[1], True)
    return Credentials("default", "", False)


def check_credentials(given: Credentials, user: str, password: str) -> None:
    """Raise the ClickHouse authentication error unless ``given`` matches (no password = open)."""
    if not password:
        return
    if given.user == user and given.password == password:
        return
    if not given.supplied:
        raise ProtocolError(
            REQUIRED_PASSWORD, "REQUIRED_PASSWORD", f"{user}: Authentication failed: password is required"
        )
    raise ProtocolError(
        AUTHENTICATION_FAILED,
        "AUTHENTICATION_FAILED",
        f"{given.user}: Authentication failed: password is incorrect, or there is no user with such name",
    )


def check_method(method: str, statement: Statement) -> None:
    """Refuse a modifying statement sent by GET: ClickHouse runs GET requests with ``readonly=2``.

    The engine calls this after the statement parsed (``statement.method``): like ClickHouse, a GET
    of invalid SQL answers the syntax error, not the readonly one.
    """
    if method.upper() in ("GET", "HEAD") and statement.kind != "select" and not statement.changes_session:
        raise ProtocolError(
            READONLY,
            "READONLY",
            "Cannot execute query in readonly mode. For queries over HTTP, method GET implies readonly. "
            "You should use method POST for modifying queries",
        )


def http_status_of_code(code: int) -> int:
    """HTTP status ClickHouse answers for an exception ``code`` (500 when it has no special one)."""
    if code in _HTTP_STATUS_OF_CODE:
        return _HTTP_STATUS_OF_CODE[code]
    if code in _NOT_FOUND_CODES:
        return 404
    if code in _BAD_REQUEST_CODES:
        return 400
    return 500


_CODE = re.compile(r"Code: (\d+)\.")


def error_text(message: str) -> tuple[int, str]:
    """Return (code, text) of an engine error in ClickHouse's ``Code: NN. DB::Exception: ...`` form."""
    idx = message.find("Code: ")
    text = message[idx:].strip() if idx >= 0 else f"Code: {UNKNOWN_EXCEPTION}. DB::Exception: {message.strip()}. (UNKNOWN_EXCEPTION)"
    match = _CODE.match(text)
    return (int(match.group(1)) if match else UNKNOWN_EXCEPTION), text


def content_type_of(fmt: str) -> str:
    """The Content-Type ClickHouse sends for an output format."""
    if fmt in _CONTENT_TYPES:
        return _CONTENT_TYPES[fmt]
    if fmt in _BINARY_FORMATS:
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


def _skip_ws_and_comments(buf: bytes, pos: int) -> int:
    # ClickHouse's lexer: "--" to the end of the line, "#" followed by a space or "!" likewise,
    # "/* */" nested; anything else that starts with "#" is not a comment (the parser refuses it)
    n = len(buf)
    while pos < n:
        ch = buf[pos]
        if ch in b" \t\r\n\f\v":
            pos += 1
        elif buf.startswith(b"--", pos) or buf.startswith(b"# ", pos) or buf.startswith(b"#!", pos):
            end = buf.find(b"\n", pos)
            pos = n if end < 0 else end + 1
        elif buf.startswith(b"/*", pos):
            pos = _skip_block_comment(buf, pos)
        else:
            break
    return pos


def _skip_block_comment(buf: bytes, pos: int) -> int:
    depth, pos, n = 1, pos + 2, len(buf)
    while pos < n and depth:
        if buf.startswith(b"/*", pos):
            depth, pos = depth + 1, pos + 2
        elif buf.startswith(b"*/", pos):
            depth, pos = depth - 1, pos + 2
        else:
            pos += 1
    return pos


def _skip_quoted(buf: bytes, pos: int) -> int:
    quote = buf[pos]
    pos += 1
    n = len(buf)
    while pos < n:
        ch = buf[pos]
        if ch == 0x5C:  # backslash escape
            pos += 2
            continue
        if ch == quote:
            if pos + 1 < n and buf[pos + 1] == quote:  # doubled quote
                pos += 2
                continue
            return pos + 1
        pos += 1
    return n


_HEREDOC = re.compile(rb"\$([A-Za-z0-9_]*)\$")


@dataclass(frozen=True)
class Token:
    """One lexeme of a statement: ``buf[start:end]``.

    ``word`` is the upper-cased text of a bare word (empty otherwise; ``(`` for an opening
    parenthesis); ``quote`` is the opening quote of a quoted part (``'``, ``"``, a backtick, or
    ``$`` for a heredoc ``$tag$...$tag$``), empty otherwise.
    """

    start: int
    end: int
    word: bytes
    quote: bytes = b""

    def text(self, buf: bytes) -> bytes:
        """The token's bytes in ``buf``."""
        return buf[self.start:self.end]


def tokens(buf: bytes, stop_after_format: bool, stop_at_semicolon: bool = True) -> list[Token]:
    """Lex a statement: words, quoted parts and punctuation, until the data starts.

    With ``stop_after_format`` lexing stops right after the identifier that follows a top-level
    ``FORMAT`` keyword of an INSERT: what comes next is data, possibly binary. With
    ``stop_at_semicolon`` it stops after a top-level ``;``.
    """
    return list(iter_tokens(buf, stop_after_format, stop_at_semicolon))


def iter_tokens(buf: bytes, stop_after_format: bool, stop_at_semicolon: bool = True) -> Iterator[Token]:
    """:func:`tokens` one at a time, so a caller looking for the head of a long statement can stop early."""
    prev_word = b""  # the token before this one, when it was a bare word (the FORMAT check)
    pos = 0
    depth = 0
    n = len(buf)
    while True:
        pos = _skip_ws_and_comments(buf, pos)
        if pos >= n:
            return
        ch = buf[pos]
        heredoc = _HEREDOC.match(buf, pos) if ch == 0x24 else None
        if ch in b"'\"`":
            end = _skip_quoted(buf, pos)
            yield Token(pos, end, b"", bytes((ch,)))
            pos, prev_word = end, b""
        elif heredoc is not None:
            close = buf.find(heredoc.group(0), heredoc.end())
            end = n if close < 0 else close + len(heredoc.group(0))
            yield Token(pos, end, b"", b"$")
            pos, prev_word = end, b""
        elif ch == 0x5F or 0x30 <= ch <= 0x39 or 0x41 <= ch <= 0x5A or 0x61 <= ch <= 0x7A or ch >= 0x80:
            end = pos
            while end < n and (buf[end] == 0x5F or 0x30 <= buf[end] <= 0x39 or 0x41 <= buf[end] <= 0x5A
                               or 0x61 <= buf[end] <= 0x7A or buf[end] >= 0x80 or buf[end] == 0x2E):
                end += 1
            word = buf[pos:end].upper()
            yield Token(pos, end, word)
            pos = end
            if stop_after_format and depth == 0 and prev_word == b"FORMAT":
                return
            prev_word = word
        else:
            depth += ch == 0x28
            depth -= ch == 0x29
            yield Token(pos, pos + 1, b"(" if ch == 0x28 else b"")
            pos, prev_word = pos + 1, b""
            if ch == 0x3B and depth <= 0 and stop_at_semicolon:  # ';' ends the statement
                return


_ESCAPES = {ord("0"): 0, ord("a"): 7, ord("b"): 8, ord("e"): 27, ord("f"): 12, ord("n"): 10, ord("r"): 13,
            ord("t"): 9, ord("v"): 11}
_HEX2 = re.compile(rb"[0-9A-Fa-f]{2}")


def unquote(buf: bytes, token: Token) -> str:
    """The value of a quoted token as ClickHouse reads it (backslash escapes, hex escapes, doubled quotes)."""
    raw = token.text(buf)
    if token.quote == b"$":
        tag = raw[:raw.index(b"$", 1) + 1]
        inner = raw[len(tag):]
        return (inner.removesuffix(tag)).decode(errors="replace")
    quote = raw[0]
    body = raw[1:-1] if len(raw) >= 2 and raw[-1] == quote else raw[1:]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == 0x5C and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in b"xX" and _HEX2.fullmatch(body, i + 2, i + 4):
                out.append(int(body[i + 2:i + 4], 16))
                i += 4
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
        elif ch == quote and body[i + 1:i + 2] == bytes((ch,)):
            out.append(ch)
            i += 2
        else:
            out.append(ch)
            i += 1
    return out.decode(errors="replace")


def _data_start(buf: bytes, pos: int) -> int:
    # ClickHouse: data begins after the whitespace that follows the format name, up to and
    # including the first newline.
    n = len(buf)
    while pos < n and buf[pos] in b" \t\r":
        pos += 1
    if pos < n and buf[pos] == 0x0A:
        pos += 1
    return pos


def _settings_of(params: Mapping[str, str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for key, value in params.items():
        if key in TRANSPORT_PARAMS or key.startswith("param_"):
            continue
        if not _SETTING_NAME.match(key):
            raise ProtocolError(BAD_ARGUMENTS, "BAD_ARGUMENTS", f"Invalid setting name '{key}'")
        settings[key] = value
    return settings


@dataclass(frozen=True)
class _InsertHead:
    sql: str
    fmt: str
    settings_clause: str
    data_pos: int


def _split_insert(buf: bytes) -> _InsertHead | None:
    """Split ``INSERT ... [SETTINGS ...] FORMAT f <data>`` into head, format, settings and data offset."""
    toks: list[Token] = []
    for tok in iter_tokens(buf, stop_after_format=True):
        if tok.word in (b"SELECT", b"VALUES"):  # INSERT ... SELECT has no data; VALUES rows are no FORMAT data
            return None  # (and a long VALUES list is not lexed here to learn it)
        toks.append(tok)
    words = [t.word for t in toks]
    if len(toks) < 2 or words[-2] != b"FORMAT":
        return None
    fmt_token = toks[-1]
    head_end = toks[-2].start
    settings_clause = ""
    if b"SETTINGS" in words[:-2]:
        idx = words.index(b"SETTINGS")
        settings_clause = buf[toks[idx].start:head_end].decode().strip()
        head_end = toks[idx].start
    return _InsertHead(
        sql=buf[:head_end].decode().strip(),
        fmt=buf[fmt_token.start:fmt_token.end].decode(),
        settings_clause=settings_clause,
        data_pos=_data_start(buf, fmt_token.end),
    )


def _first_keyword(buf: bytes) -> bytes:
    first = _skip_ws_and_comments(buf, 0)
    match = re.match(rb"[A-Za-z]+|\(", buf[first:first + 16])
    return match.group(0).upper() if match else b""


def _session_of(params: Mapping[str, str]) -> dict[str, Any]:
    # ClickHouse: session_timeout in seconds, default 60, at most max_session_timeout (3600)
    raw = params.get("session_timeout") or "60"
    try:
        timeout = float(raw)
    except ValueError:
        raise ProtocolError(BAD_ARGUMENTS, "BAD_ARGUMENTS", f"Invalid session timeout: '{raw}'") from None
    if not 0 <= timeout <= MAX_SESSION_TIMEOUT_S:
        raise ProtocolError(
            INVALID_SESSION_TIMEOUT, "INVALID_SESSION_TIMEOUT",
            f"Session timeout {raw} is larger than max_session_timeout: {MAX_SESSION_TIMEOUT_S:.0f}",
        )
    return {
        "session_id": params.get("session_id") or None,
        "session_timeout_s": timeout,
        "session_check": params.get("session_check") in ("1", "true"),
    }


def _refuse_multi_statements(sql: bytes) -> None:
    # chdb would run "SELECT 1; DROP TABLE t" as two statements; ClickHouse's HTTP interface refuses
    if b";" not in sql:
        return
    toks = tokens(sql, stop_after_format=False)
    if toks and sql[toks[-1].start] == 0x3B and _skip_ws_and_comments(sql, toks[-1].end) < len(sql):
        raise ProtocolError(
            SYNTAX_ERROR, "SYNTAX_ERROR", f"Syntax error (Multi-statements are not allowed): failed at position "
            f"{toks[-1].end + 1}: {sql[toks[-1].end:toks[-1].end + 40].decode(errors='replace').strip()}"
        )


def parse_request(params: Mapping[str, str], body: bytes, *, form_query: str | None = None) -> Statement:
    """Build the :class:`Statement` of one request from its URL parameters and decompressed body.

    As in ClickHouse, the URL ``query`` (or a form field ``query``) and the body are joined: the
    body continues the statement. When the URL statement already ends with ``FORMAT f``, the body
    is the data byte for byte (binary Native data may start with whitespace bytes).
    """
    url_query = form_query if form_query is not None else params.get("query")
    url_bytes = url_query.encode() if url_query else b""
    full = url_bytes + b"\n" + body if url_bytes and body else (url_bytes or body)
    if not full or full.isspace():  # isspace, not strip: no copy of a large body
        raise ProtocolError(SYNTAX_ERROR, "SYNTAX_ERROR", "Empty query")
    common: dict[str, Any] = {
        "database": params.get("database") or None,
        "default_format": _format_name(params.get("default_format") or "TabSeparated"),
        "settings": _settings_of(params),
        "params": {k[6:]: v for k, v in params.items() if k.startswith("param_")},
        "query_id": _query_id(params.get("query_id")),
        **_session_of(params),
    }
    keyword = _first_keyword(full)
    common["keyword"] = keyword.decode()
    if keyword != b"INSERT":
        _refuse_multi_statements(full)
        kind = "select" if keyword in _RESULT_KEYWORDS else "other"
        return Statement(sql=_decode_sql(full), kind=kind, **common)
    head = _split_insert(url_bytes) if url_bytes else None
    if head is not None and not url_bytes[head.data_pos:].strip():
        data = body
    else:
        head = _split_insert(full)
        data = full[head.data_pos:] if head is not None else b""
    if head is None:  # INSERT ... VALUES (...) or INSERT ... SELECT: the engine runs it as is
        _refuse_multi_statements(full)
        sql = _decode_sql(full)
        return Statement(sql=sql, kind="insert", values_data=_values_data(full).decode(), **common)
    return Statement(
        sql=head.sql,
        insert_format=head.fmt,
        insert_data=data,
        insert_settings_clause=head.settings_clause,
        kind="insert",
        **common,
    )


_FORMAT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_HEADER_SAFE = re.compile(r"^[\x20-\x7e]*$")


def _format_name(name: str) -> str:
    # it goes back in the X-ClickHouse-Format header: a name no format has is refused here
    if not _FORMAT_NAME.match(name):
        raise ProtocolError(UNKNOWN_FORMAT, "UNKNOWN_FORMAT", f"Unknown format {name!r}")
    return name


def query_id_of(params: Mapping[str, str]) -> str | None:
    """The client's ``query_id`` if it can be echoed in a response header, else None."""
    query_id = params.get("query_id")
    return query_id if query_id and _HEADER_SAFE.match(query_id) else None


def _query_id(query_id: str | None) -> str | None:
    if query_id and not _HEADER_SAFE.match(query_id):
        raise ProtocolError(BAD_ARGUMENTS, "BAD_ARGUMENTS", "query_id must be printable ASCII")
    return query_id or None


def _values_data(sql: bytes) -> bytes:
    # the rows after a top-level VALUES: data to the parser, but their expressions are evaluated
    depth = 0
    for tok in iter_tokens(sql, stop_after_format=False):
        depth += (tok.word == b"(") - (sql[tok.start] == 0x29)
        if depth == 0 and tok.word == b"VALUES":
            return sql[tok.end:]
    return b""


def _decode_sql(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError(SYNTAX_ERROR, "SYNTAX_ERROR", f"Query is not valid UTF-8 at byte {exc.start}") from exc


_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*;?\s*$", re.IGNORECASE)


def output_format(statement: Statement) -> str:
    """The output format of a result-producing statement: its FORMAT clause, else ``default_format``."""
    match = _TRAILING_FORMAT.search(statement.sql)
    return match.group(1) if match else statement.default_format
