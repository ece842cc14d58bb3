"""Fuzzing the warehouse over HTTP: tens of thousands of random and mutated requests, one real process.

Each hypothesis example is a seed; the batch of requests it makes is sent at once from a few threads
(so the engine's handles are shared the way clients share them). Requests are made from the seed
with ``random`` (drawing each one through hypothesis took longer than sending it), so a failing
batch replays from the seed hypothesis reports. The requests: SQL from a corpus (ordinary statements, statements
that reach for a file, the network or the process) as it is, mutated byte by byte, spliced or
replaced by noise; random URL parameters (settings, sessions, formats, query parameters); Native
insert data (valid, truncated, flipped) under every Content-Encoding, sometimes the wrong one. Every
answer must be HTTP 200 or a ClickHouse error (``Code: NN`` with its exception-code header), never
show the canary file's secret; afterwards the process still runs, answers ``/ping``, has left no
spool file behind, written no file anywhere we can see and holds no more descriptors than before.
"""

from __future__ import annotations

import gzip
import os
import random
import secrets
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import lz4.frame
import pytest
import requests
from clickhouse_connect.driver.compression import _zstd_compress
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.broker import free_port
from warehouse.process import WarehouseProcess

pytestmark = [pytest.mark.integration, pytest.mark.local_backend, pytest.mark.timeout(240)]

BATCH = 40
EXAMPLES = 510  # x BATCH = 20,400 requests
THREADS = 4
# every request is bounded whatever the fuzz adds, so a mutated numbers(10) -> numbers(1000000000000) ends
_GUARD = {"max_execution_time": "2", "max_memory_usage": "400000000", "max_result_bytes": "20000000",
          "result_overflow_mode": "throw"}


@dataclass
class _Target:
    proc: WarehouseProcess
    base: Path
    canary: Path
    secret: str
    native: bytes
    sessions: list[requests.Session] = field(default_factory=list)
    local: threading.local = field(default_factory=threading.local)
    sent: int = 0

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.sessions.append(self.local.session)
        return self.local.session


def _fd_count(pid: int) -> int:
    # the engine keeps /proc/thread-self/{stat,schedstat,io} open per pool thread (bounded by the pools): not files
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed meanwhile
            continue
    return sum(not target.startswith("/proc/") for target in targets)


def _spooled(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.iterdir())


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Target]:
    base = tmp_path_factory.mktemp("fuzz")
    secret = secrets.token_hex(16)
    canary = base / "canary.txt"
    canary.write_text(f"{secret}\n")
    (base / "spool").mkdir()
    proc = WarehouseProcess(free_port(), base / "data", log_path=base / "warehouse.log",
                            settings_env={"TICKPIPE_WAREHOUSE__SPOOL_DIR": str(base / "spool")})
    with proc:
        ok = requests.post(proc.url, data=b"CREATE TABLE fz (n UInt32, s String, p Nullable(Decimal(38, 18)), "
                                           b"a Array(String)) ENGINE = MergeTree ORDER BY n", timeout=30)
        assert ok.status_code == 200, ok.text
        native = requests.post(proc.url, data=b"SELECT number::UInt32 AS n, toString(number) AS s, "
                                              b"toDecimal128(number / 7, 18)::Nullable(Decimal(38, 18)) AS p, "
                                              b"[toString(number)] AS a FROM numbers(40) FORMAT Native", timeout=30)
        yield _Target(proc, base, canary, secret, native.content)


def _corpus(canary: Path) -> list[bytes]:
    c = str(canary)
    return [s.encode() for s in [
        "SELECT 1", "SELECT number, toString(number) FROM numbers(5) FORMAT CSV", "SELECT count() FROM fz",
        "SELECT * FROM fz ORDER BY n LIMIT 3 FORMAT JSON", "SELECT sum(p), groupArray(s) FROM fz",
        "INSERT INTO fz (n, s) VALUES (1, 'a'), (2, 'b')", "INSERT INTO fz SELECT number, 'x', NULL, [] FROM numbers(3)",
        "INSERT INTO fz FORMAT CSV\n1,a,0.5,\"['x']\"\n", "INSERT INTO fz FORMAT JSONEachRow\n{\"n\":1,\"s\":\"q\"}\n",
        "CREATE TABLE IF NOT EXISTS fz2 (x UInt8) ENGINE = Memory", "DROP TABLE IF EXISTS fz2", "SHOW TABLES",
        "DESCRIBE TABLE fz", "EXISTS TABLE fz", "SET max_threads = 1", "USE default", "SELECT {p:UInt8} + 1",
        "WITH 2 AS x SELECT x * number FROM numbers(3)", "EXPLAIN SELECT 1", "OPTIMIZE TABLE fz FINAL",
        "SELECT throwIf(number = 3) FROM numbers(10) FORMAT TSV", "ALTER TABLE fz DELETE WHERE n > 1000000",
        "SELECT $$a;b$$, 'it''s', `n` FROM fz LIMIT 1", "SELECT 1 /* c */ -- d\n",
        f"SELECT * FROM file('{c}', 'LineAsString')", f"SELECT file('{c}')", f"SELECT * FROM `{c}`",
        f"SELECT * FROM '{c}'", f"DESCRIBE '{c}'", f"INSERT INTO fz (s) VALUES (file('{c}'))",
        f"INSERT INTO fz (s) SELECT * FROM file('{c}', 'LineAsString')", "SELECT * FROM url('http://127.0.0.1:9/', 'CSV')",
        "SELECT * FROM remote('127.0.0.1:9', system.one)", "SELECT * FROM executable('sh', 'CSV', 'a String')",
        f"SELECT 1 INTO OUTFILE '{c}.out'", f"INSERT INTO fz FROM INFILE '{c}' FORMAT CSV", "SYSTEM SHUTDOWN",
        "SYSTEM KILL", f"CREATE TABLE leak (s String) ENGINE = File(LineAsString, '{c}')",
        f"CREATE DATABASE leak ENGINE = Filesystem('{canary.parent}')", "SELECT * FROM filesystem('/')",
        "SELECT 1; DROP TABLE fz", "INSERT INTO fz (n) VALUES (1); DROP TABLE fz", "SELECT * FROM python('x')",
        "SET dialect = 'prql'", f"SELECT * FROM file('/et\\x63/../{c}')", f"SELECT * FROM file($$${c}$$$)",
    ]]


_SETTING_NAMES = ["max_threads", "max_block_size", "readonly", "output_format_json_quote_64bit_integers",
                  "insert_deduplication_token", "date_time_input_format", "dialect", "implicit_select",
                  "max_query_size", "max_ast_depth", "allow_experimental_analyzer", "input_format_values_interpret_expressions",
                  "wait_end_of_query", "session_id", "session_timeout", "session_check", "default_format",
                  "database", "query_id", "param_p", "compress", "bad name", "", "x" * 300]
_VALUES = ["0", "1", "2", "-1", "TSV", "Native", "JSON", "default", "nope", "s1", "3601", "prql", "1e9", "'", "",
           "{p:UInt8}"]


def _mutate(data: bytes, rng: random.Random) -> bytes:
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(["insert", "delete", "replace", "truncate", "duplicate"])
        pos = rng.randint(0, len(data))
        if op == "insert":
            data = data[:pos] + rng.choice(_SPLINTERS) + data[pos:]
        elif op == "delete":
            data = data[:pos] + data[pos + rng.randint(1, 8):]
        elif op == "replace" and data:
            data = data[:pos] + rng.randbytes(rng.randint(1, 4)) + data[pos + 1:]
        elif op == "truncate":
            data = data[:pos]
        else:
            data = data[:pos] + data[pos // 2:pos] + data[pos:]
    return data


_SPLINTERS = [b";", b"'", b"`", b"(", b")", b"$$", b"/*", b"--", b"\\", b"\x00", b"\xff", b"FORMAT ", b" file(", b"\n",
              b"#", b"9" * 12, b"\\x2f", b" SETTINGS ", b" INTO OUTFILE 'x'"]
_CODECS = {"gzip": gzip.compress, "deflate": zlib.compress, "zstd": _zstd_compress, "lz4": lz4.frame.compress}


def _value(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return rng.choice(_VALUES)
    return "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 12)))


def _request(rng: random.Random, corpus: list[bytes], native: bytes) -> tuple[str, dict[str, str], bytes, dict[str, str]]:
    """One request from ``rng`` (hypothesis draws the seeds, so a failing batch replays from its seed)."""
    kind = rng.choice(["sql", "sql", "mutated", "mutated", "spliced", "noise", "native"])
    params = {rng.choice(_SETTING_NAMES): _value(rng) for _ in range(rng.randint(0, 3))}
    headers: dict[str, str] = {}
    if kind == "native":
        params["query"] = "INSERT INTO fz FORMAT Native"
        body = native if rng.random() < 0.5 else _mutate(native, rng)
    elif kind == "sql":
        body = rng.choice(corpus)
    elif kind == "mutated":
        body = _mutate(rng.choice(corpus), rng)
    elif kind == "spliced":
        body = rng.choice(corpus) + rng.choice([b";", b" ", b"\n", b" UNION ALL "]) + rng.choice(corpus)
    elif rng.random() < 0.5:
        body = rng.randbytes(rng.randint(0, 120))
    else:
        body = "".join(chr(rng.randint(0x20, 0x17F)) for _ in range(rng.randint(0, 80))).encode()
    method = rng.choice(["POST", "POST", "GET"])
    if method == "GET":
        params["query"] = (params.get("query", "") + " " + body.decode(errors="replace")).strip()
        body = b""
    elif rng.random() < 0.5:
        codec = rng.choice([*_CODECS, "identity", "br", "gzip, deflate"])
        body = _CODECS.get(codec, lambda b: b)(body)
        if rng.random() < 0.2:
            body = _mutate(body, rng)
        headers["Content-Encoding"] = rng.choice([codec, codec, "gzip", "lz4"])
    params.update(_GUARD)
    return method, params, body, headers


def _send(target: _Target, request: tuple[str, dict[str, str], bytes, dict[str, str]]) -> requests.Response:
    method, params, body, headers = request
    return target.session().request(method, target.proc.url, params=params, data=body, headers=headers, timeout=60)


def _check_answer(target: _Target, response: requests.Response) -> None:
    assert target.secret not in response.text, "the canary file's content reached a client"
    if response.status_code == 200:
        return
    assert response.status_code in (400, 401, 403, 404, 408, 500, 501, 503), (response.status_code, response.text[:300])
    assert response.headers.get("X-ClickHouse-Exception-Code", "").isdigit(), response.text[:300]
    assert response.text.startswith("Code: "), response.text[:300]


def test_random_and_mutated_requests_get_answers_and_leave_nothing_behind(target: _Target) -> None:
    corpus = _corpus(target.canary)
    pid = target.proc.pid
    assert pid is not None
    files_before = sorted(p.name for p in target.base.iterdir())
    pool = ThreadPoolExecutor(THREADS)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**64))
    def fuzz(seed: int) -> None:
        rng = random.Random(seed)
        batch = [_request(rng, corpus, target.native) for _ in range(BATCH)]
        for response in pool.map(lambda request: _send(target, request), batch):
            _check_answer(target, response)
        target.sent += len(batch)

    # one pass over the corpus first: the engine's first exception maps its libraries for stack traces, once
    for sql in corpus:
        _check_answer(target, _send(target, ("POST", dict(_GUARD), sql, {})))
    fds_before = _fd_count(pid)
    try:
        fuzz()
    finally:
        pool.shutdown()
        for session in target.sessions:
            session.close()

    assert target.sent >= 20_000
    assert target.proc.proc is not None and target.proc.proc.poll() is None, "the warehouse died"
    assert requests.get(f"{target.proc.url}/ping", timeout=10).text == "Ok.\n"
    assert requests.post(target.proc.url, data=b"SELECT 1", timeout=10).text == "1\n"
    assert _spooled(target.base / "spool") == []
    assert sorted(p.name for p in target.base.iterdir()) == files_before
    assert target.canary.read_text() == f"{target.secret}\n"
    assert _fd_count(pid) <= fds_before + 8
