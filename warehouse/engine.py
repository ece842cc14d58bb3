"""The chdb store, owned by this one process, run from a pool of blocking worker threads.

chdb hosts one ClickHouse engine per process and locks its data directory against other
processes. Within the process any number of ``chdb.connect`` handles share that engine; each
handle carries its own session state (``USE``, ``SET``) and calls on different handles run in
parallel (chdb releases the GIL while the engine works). One handle is not safe for concurrent
calls, so each request borrows a handle of its own from a pool for its duration.

Per-request settings (URL parameters) are applied with ``SET`` on the borrowed handle, and only
the difference to what that handle already carries, so a client that sends the same settings on
every request (clickhouse-connect does) pays nothing after its first request. A request with a
``session_id`` gets that session's own handle instead (HTTP sessions: ``SET``, ``USE`` and
temporary tables persist until the session has been idle for ``session_timeout``). Insert data is
spooled to a file and read with ``INSERT ... FROM INFILE``: chdb cannot take binary data
inline in the query text (chdb's own clickhouse-connect backend does the same).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chdb

from warehouse.access import SourcePolicy, check_statement, check_values
from warehouse.protocol import (
    SESSION_IS_LOCKED,
    SESSION_NOT_FOUND,
    SYNTAX_ERROR,
    Statement,
    check_method,
    error_text,
    output_format,
)

_VETTED_CACHE = 1024
# formatQuery names itself in its errors ("... : In scope SELECT formatQuery(...)"): the client sent
# the inner statement, so its error reads as ClickHouse's parser would put it
_IN_SCOPE = re.compile(r"(?:\.)?\s*: In scope SELECT formatQuery\(.*?\)\s+SETTINGS [^.]*?\.(?= \()", re.DOTALL)


class EngineError(Exception):
    """A statement the engine refused; ``text`` is ClickHouse's ``Code: NN. DB::Exception: ...``."""

    retriable = False

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass(frozen=True)
class Outcome:
    """What one statement produced: the response body and the figures of its summary header."""

    body: bytes
    fmt: str | None
    read_rows: int
    read_bytes: int
    written_rows: int
    written_bytes: int
    elapsed_ns: int

    def summary(self) -> dict[str, str]:
        """The ``X-ClickHouse-Summary`` object (ClickHouse sends every figure as a string)."""
        return {
            "read_rows": str(self.read_rows),
            "read_bytes": str(self.read_bytes),
            "written_rows": str(self.written_rows),
            "written_bytes": str(self.written_bytes),
            "total_rows_to_read": str(self.read_rows),
            "result_bytes": str(len(self.body)),
            "elapsed_ns": str(self.elapsed_ns),
        }


class StoreError(RuntimeError):
    """The chdb store cannot be opened (not a directory, no permission, owned by another process)."""

    retriable = False


class StoreLockedError(StoreError):
    """Another process owns the chdb store (chdb allows one process per data directory)."""


def _lock_store(data_dir: Path) -> int:
    # chdb's own refusal ("Error initializing EmbeddedServer") does not say why; an flock of our own,
    # held for the life of the process, names the owner
    path = data_dir / "warehouse.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StoreLockedError(
            f"chdb store {data_dir} is owned by another warehouse process (pid {owner}); "
            "chdb allows one process per data directory: query that one over HTTP"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _default_spool_dir() -> Path | None:
    # RAM-backed when the system has it: the data is in memory already, a disk round trip only adds time
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


class _Handle:
    __slots__ = ("conn", "database", "settings")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.database = "default"
        self.settings: dict[str, str] = {}


@dataclass
class _Session:
    handle: _Handle
    busy: bool = False
    timeout_s: float = 60.0
    expires: float = 0.0


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _escaped(text: str) -> str:
    # a String query parameter is read in TSV's escaped form
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _quote_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class ResultStream:
    """A result sent block by block (``send_query``); holds its engine handle until :meth:`close`."""

    def __init__(
        self, executor: ThreadPoolExecutor, release: Callable[[], None], streaming: Any, first: bytes, fmt: str
    ) -> None:
        self.fmt = fmt
        self._executor = executor
        self._release = release
        self._streaming = streaming
        self._first: bytes | None = first
        self._pending: asyncio.Future[bytes] | None = None
        self._closed = False

    async def next_chunk(self) -> bytes:
        """The next block's bytes, ``b""`` at the end; raise :class:`EngineError` if the query fails."""
        if self._first is not None:
            first, self._first = self._first, None
            return first
        loop = asyncio.get_running_loop()
        self._pending = loop.run_in_executor(self._executor, _next_block, self._streaming)
        return await self._pending

    async def close(self) -> None:
        """Stop the query (if it still runs) and give the handle back; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._pending is not None and not self._pending.done():
            # a block is still being fetched on a worker thread: the handle is busy until it returns
            await asyncio.wait([self._pending])
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, _close_stream, self._streaming)
        finally:
            self._release()


def _next_block(streaming: Any) -> bytes:
    while True:
        try:
            chunk = next(streaming)
        except StopIteration:
            return b""
        except Exception as exc:  # chdb raises ChdbError mid-stream
            code, text = error_text(str(exc))
            raise EngineError(code, text) from exc
        payload = chunk.bytes() if hasattr(chunk, "bytes") else bytes(chunk)
        if payload:
            return payload


def _close_stream(streaming: Any) -> None:
    try:
        streaming.cancel()
    finally:
        streaming.close()


class Engine:
    """The warehouse's chdb engine: ``await engine.run(statement)`` from the event loop.

    Handles are borrowed on the event loop (an asyncio queue), never by a worker thread waiting:
    a result stream holds a handle between blocks without holding a thread, so streams and
    statements can never starve each other of threads.
    """

    def __init__(
        self, data_dir: Path, workers: int, spool_dir: Path | None = None, user_files_dir: Path | None = None,
        network_sources: bool = False,
    ) -> None:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = _lock_store(data_dir)
        except OSError as exc:
            raise StoreError(f"cannot open the chdb store {data_dir}: {exc}") from exc
        self._data_dir = data_dir
        self._spool_dir = spool_dir or _default_spool_dir()
        if self._spool_dir is not None:
            self._spool_dir.mkdir(parents=True, exist_ok=True)
        self._free: asyncio.Queue[_Handle] = asyncio.Queue()
        self._sessions: dict[str, _Session] = {}
        self._all: list[_Handle] = []
        for _ in range(workers):
            handle = _Handle(chdb.connect(str(data_dir)))
            self._all.append(handle)
            self._free.put_nowait(handle)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chdb")
        probe = self._all[0].conn.query("SELECT version(), timezone()", "TabSeparated").bytes().decode()
        self.version, self.timezone = probe.strip().split("\t")
        catalogue = self._all[0].conn.query(
            "SELECT name FROM system.table_functions UNION ALL SELECT name FROM system.table_engines "
            "UNION ALL SELECT name FROM system.database_engines", "TabSeparatedRaw",
        ).bytes().decode().split()
        self.policy = SourcePolicy.from_catalogue(catalogue, user_files_dir, network_sources)
        self._vetted: OrderedDict[str, None] = OrderedDict()

    async def run(self, statement: Statement) -> Outcome:
        """Run ``statement`` on a worker thread; the event loop stays free for other clients."""
        handle, release = await self._acquire(statement)
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._execute, handle, statement)
        # the handle goes back when the thread is done with it, even if this request is cancelled
        future.add_done_callback(lambda _: release())
        return await future

    async def stream(self, statement: Statement, fmt: str) -> ResultStream:
        """Start a result-producing ``statement`` whose output is sent block by block.

        The first block is fetched before returning, so a statement the engine refuses raises
        :class:`EngineError` here, before any response is started.
        """
        handle, release = await self._acquire(statement)
        loop = asyncio.get_running_loop()
        try:
            streaming, first = await loop.run_in_executor(self._executor, self._open_stream, handle, statement)
        except BaseException:
            release()
            raise
        return ResultStream(self._executor, release, streaming, first, fmt)

    async def _acquire(self, statement: Statement) -> tuple[_Handle, Callable[[], None]]:
        if statement.session_id is None:
            handle = await self._free.get()
            return handle, lambda: self._free.put_nowait(handle)
        return self._session(statement)

    def _session(self, statement: Statement) -> tuple[_Handle, Callable[[], None]]:
        # ClickHouse HTTP sessions: SET, USE and temporary tables persist per session_id; one
        # request at a time (a concurrent one is refused, not queued); idle sessions expire
        sid = statement.session_id
        assert sid is not None
        session = self._sessions.get(sid)
        if session is None:
            if statement.session_check:
                raise EngineError(SESSION_NOT_FOUND, f"Code: {SESSION_NOT_FOUND}. DB::Exception: Session {sid} not found. "
                                                     "(SESSION_NOT_FOUND)")
            session = self._sessions[sid] = _Session(_Handle(chdb.connect(str(self._data_dir))))
        if session.busy:
            raise EngineError(SESSION_IS_LOCKED, f"Code: {SESSION_IS_LOCKED}. DB::Exception: Session {sid} is locked "
                                                 "by a concurrent client. (SESSION_IS_LOCKED)")
        session.busy = True
        session.timeout_s = statement.session_timeout_s

        def release() -> None:
            session.busy = False
            session.expires = time.monotonic() + session.timeout_s

        return session.handle, release

    def expire_sessions(self) -> None:
        """Close the sessions idle past their ``session_timeout``."""
        now = time.monotonic()
        for sid in [sid for sid, s in self._sessions.items() if not s.busy and s.expires <= now]:
            self._sessions.pop(sid).handle.conn.close()

    @property
    def session_count(self) -> int:
        """HTTP sessions open now."""
        return len(self._sessions)

    def _vet(self, handle: _Handle, statement: Statement) -> None:
        # the engine's own parser first (syntax errors and multi-statements as ClickHouse reports
        # them, before the readonly check), then the source grants on what it parsed
        text = statement.parsed_text
        if text not in self._vetted:
            try:
                result = handle.conn.query(
                    "SELECT formatQuery({q:String}) SETTINGS implicit_select = 0", "TabSeparatedRaw",
                    params={"q": _escaped(text)},
                )
            except Exception as exc:  # chdb raises ChdbError or RuntimeError
                code, message = error_text(str(exc))
                raise EngineError(code, _IN_SCOPE.sub(".", message) if code == SYNTAX_ERROR else message) from exc
            check_statement(result.bytes(), self.policy)
            self._vetted[text] = None
            if len(self._vetted) > _VETTED_CACHE:
                self._vetted.popitem(last=False)
        check_method(statement.method, statement)
        if statement.values_data:
            check_values(statement.values_data, self.policy)

    def _execute(self, handle: _Handle, statement: Statement) -> Outcome:
        try:
            self._prepare(handle, statement)
            self._vet(handle, statement)
            if statement.insert_format is not None:
                return self._insert_from_file(handle, statement)
            fmt = output_format(statement) if statement.kind == "select" else None
            result = self._query(handle, statement.sql, statement.default_format, statement.params)
            return self._outcome(result, fmt, written_from_read=False)
        finally:
            if statement.changes_session and statement.session_id is None:
                self._renew(handle)
            elif statement.changes_session:
                self._sync_database(handle)

    def _sync_database(self, handle: _Handle) -> None:
        # a session's USE moves its handle: remember where, so later requests are compared right
        try:
            handle.database = self._query(handle, "SELECT currentDatabase()", "TabSeparatedRaw").bytes().decode().strip()
        except EngineError:
            handle.database = ""

    def _open_stream(self, handle: _Handle, statement: Statement) -> tuple[Any, bytes]:
        self._prepare(handle, statement)
        self._vet(handle, statement)
        try:
            streaming = handle.conn.send_query(statement.sql, statement.default_format, params=statement.params or {})
        except Exception as exc:  # chdb raises ChdbError or RuntimeError
            code, text = error_text(str(exc))
            raise EngineError(code, text) from exc
        try:
            return streaming, _next_block(streaming)
        except BaseException:
            _close_stream(streaming)
            raise

    def _renew(self, handle: _Handle) -> None:
        # a fresh handle (well under 1 ms) forgets whatever SET/USE the last statement left behind
        old, handle.conn = handle.conn, chdb.connect(str(self._data_dir))
        old.close()
        handle.database, handle.settings = "default", {}

    def close(self) -> None:
        """Wait for running statements, then close every handle (flushes and unlocks the store)."""
        self._executor.shutdown(wait=True)
        for handle in [*self._all, *(session.handle for session in self._sessions.values())]:
            handle.conn.close()
        self._all.clear()
        self._sessions.clear()
        os.close(self._lock_fd)

    def _prepare(self, handle: _Handle, statement: Statement) -> None:
        wanted = statement.settings
        try:
            for name in [n for n in handle.settings if n not in wanted]:
                self._query(handle, f"SET {name} = DEFAULT", "TabSeparated")
                del handle.settings[name]
        except EngineError:  # e.g. an earlier readonly=1 forbids the reset: start from a fresh handle
            self._renew(handle)
        # readonly last: once on, it forbids changing the other settings of this same request
        for name, value in sorted(wanted.items(), key=lambda item: item[0] == "readonly"):
            if handle.settings.get(name) != value:
                self._query(handle, f"SET {name} = {_quote(value)}", "TabSeparated")
                handle.settings[name] = value
        database = statement.database or ("default" if statement.session_id is None else handle.database)
        if database != handle.database:
            self._query(handle, f"USE {_quote_ident(database)}", "TabSeparated")
            handle.database = database

    def _insert_from_file(self, handle: _Handle, statement: Statement) -> Outcome:
        fd, path = tempfile.mkstemp(prefix="tickpipe-warehouse-", suffix=".insert", dir=self._spool_dir)
        try:
            with os.fdopen(fd, "wb") as spool:
                spool.write(statement.insert_data or b"")
            sql = (
                f"{statement.sql} FROM INFILE {_quote(path)} "
                f"{statement.insert_settings_clause} FORMAT {statement.insert_format}"
            )
            result = self._query(handle, sql, "TabSeparated", statement.params)
            return self._outcome(result, None, written_from_read=True)
        finally:
            os.unlink(path)

    @staticmethod
    def _query(handle: _Handle, sql: str, fmt: str, params: dict[str, str] | None = None) -> Any:
        try:
            return handle.conn.query(sql, fmt, params=params or {})
        except Exception as exc:  # chdb raises ChdbError or RuntimeError
            code, text = error_text(str(exc))
            raise EngineError(code, text) from exc

    @staticmethod
    def _outcome(result: Any, fmt: str | None, written_from_read: bool) -> Outcome:
        body = result.bytes() or b""
        rows_read, bytes_read = int(result.rows_read()), int(result.bytes_read())
        if written_from_read:
            # an INFILE insert reads exactly the rows it writes; chdb reports them as read
            written_rows, written_bytes = int(result.rows_written()) or rows_read, int(result.bytes_written()) or bytes_read
        else:
            written_rows, written_bytes = int(result.rows_written()), int(result.bytes_written())
        return Outcome(
            body=body,
            fmt=fmt,
            read_rows=rows_read,
            read_bytes=bytes_read,
            written_rows=written_rows,
            written_bytes=written_bytes,
            elapsed_ns=int(float(result.elapsed()) * 1e9),
        )
