"""The ClickHouse HTTP interface in front of the chdb engine (aiohttp).

Serves ``/`` (queries and inserts by GET or POST), ``/ping``, ``/health`` (JSON) and ``/metrics``
(Prometheus) on one port. Statements run on the engine's worker threads, so a writer and an
analyst are served at the same time and the event loop never waits on chdb.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import tempfile
import time
import uuid
from typing import Any

import orjson
from aiohttp import BasicAuth, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from infra.settings import WarehouseSettings
from warehouse.access import check_settings
from warehouse.engine import Engine, EngineError, Outcome, ResultStream
from warehouse.metrics import WarehouseMetrics
from warehouse.protocol import (
    STREAMABLE_FORMATS,
    STREAMABLE_KEYWORDS,
    UNKNOWN_EXCEPTION,
    ProtocolError,
    check_credentials,
    content_type_of,
    credentials_of,
    decompress_body,
    http_status_of_code,
    output_format,
    parse_request,
    query_id_of,
)

log = logging.getLogger(__name__)

_ENGINE = web.AppKey("engine", Engine)
_SETTINGS = web.AppKey("settings", WarehouseSettings)
_METRICS = web.AppKey("metrics", WarehouseMetrics)
_STARTED = web.AppKey("started", float)
_SESSION_SWEEP_S = 5.0
_MAX_URI_BYTES = 1 << 20
_FORM_TYPES = ("multipart/form-data",)  # curl -d sends x-www-form-urlencoded: that body is SQL


def _basic_auth(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        auth = BasicAuth.decode(header)
    except ValueError:
        return None
    return auth.login, auth.password


def _common_headers(app: web.Application, query_id: str) -> dict[str, str]:
    engine = app[_ENGINE]
    return {
        "X-ClickHouse-Server-Display-Name": app[_SETTINGS].display_name,
        "X-ClickHouse-Query-Id": query_id,
        "X-ClickHouse-Timezone": engine.timezone,
    }


def _error_response(app: web.Application, query_id: str, code: int, text: str) -> web.Response:
    headers = _common_headers(app, query_id)
    headers["X-ClickHouse-Exception-Code"] = str(code)
    body = f"{text} (version {app[_ENGINE].version})\n"
    return web.Response(
        status=http_status_of_code(code), body=body.encode(), headers=headers, content_type="text/plain", charset="utf-8"
    )


async def _read_statement_input(request: web.Request) -> tuple[dict[str, str], bytes, str | None]:
    """Return (parameters, decompressed body, form query) of a request."""
    params: dict[str, str] = dict(request.query)
    for header, name in (("X-ClickHouse-Format", "default_format"), ("X-ClickHouse-Database", "database")):
        if header in request.headers:
            params.setdefault(name, request.headers[header])
    form_query: str | None = None
    if request.method == "POST" and request.content_type in _FORM_TYPES:
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, str):
                params[key] = value
        form_query = params.pop("query", None)
        return params, b"", form_query
    raw = await request.read() if request.method == "POST" else b""
    request.app[_METRICS].body_bytes.inc(len(raw))
    encoding = request.headers.get("Content-Encoding")
    if raw and encoding and encoding.lower() != "identity":
        limit = request.app[_SETTINGS].max_decompressed_bytes
        body = await asyncio.get_running_loop().run_in_executor(None, decompress_body, raw, encoding, limit)
    else:
        body = raw
    return params, body, form_query


async def _handle_query(request: web.Request) -> web.StreamResponse:
    app = request.app
    metrics = app[_METRICS]
    if request.method == "GET" and "query" not in request.query:
        return web.Response(text="Ok.\n")
    query_id = query_id_of(request.query) or str(uuid.uuid4())
    started, started_ns = time.perf_counter(), time.perf_counter_ns()
    kind = "other"
    metrics.start()
    try:
        settings = app[_SETTINGS]
        check_credentials(
            credentials_of(request.query, request.headers, _basic_auth(request)), settings.user, settings.password
        )
        params, body, form_query = await _read_statement_input(request)
        statement = dataclasses.replace(parse_request(params, body, form_query=form_query), method=request.method)
        kind = statement.kind
        check_settings(statement.settings)
        fmt = output_format(statement) if kind == "select" else None
        if (fmt in STREAMABLE_FORMATS and statement.keyword in STREAMABLE_KEYWORDS
                and params.get("wait_end_of_query") != "1"):
            # as ClickHouse without wait_end_of_query: send blocks as they come, memory stays flat
            return await _send_stream(request, query_id, await app[_ENGINE].stream(statement, fmt), started_ns)
        outcome = await app[_ENGINE].run(statement)
    except (ProtocolError, EngineError) as exc:
        code, text = exc.code, str(exc)
        metrics.errors.labels(str(code)).inc()
        response = _error_response(app, query_id, code, text)
        metrics.requests.labels(kind, str(response.status)).inc()
        log.warning("statement refused", extra={"query_id": query_id, "kind": kind, "code": code, "error": text[:500]})
        return response
    except web.HTTPException:
        metrics.requests.labels(kind, "4xx").inc()
        raise
    except Exception as exc:  # task boundary: answer like ClickHouse and keep serving
        log.exception("statement failed inside the warehouse", extra={"query_id": query_id, "kind": kind})
        metrics.errors.labels(str(UNKNOWN_EXCEPTION)).inc()
        metrics.requests.labels(kind, "500").inc()
        text = f"Code: {UNKNOWN_EXCEPTION}. DB::Exception: {type(exc).__name__}: {exc}. (UNKNOWN_EXCEPTION)"
        return _error_response(app, query_id, UNKNOWN_EXCEPTION, text)
    finally:
        metrics.finish()
        metrics.latency.labels(kind).observe(time.perf_counter() - started)
    metrics.requests.labels(kind, "200").inc()
    metrics.read_rows.inc(outcome.read_rows)
    if statement.is_insert:
        metrics.inserted_rows.inc(outcome.written_rows)
    log.debug(
        "statement served",
        extra={"query_id": query_id, "kind": kind, "written_rows": outcome.written_rows, "read_rows": outcome.read_rows,
               "ms": round((time.perf_counter() - started) * 1000, 3)},
    )
    return _ok_response(app, query_id, outcome)


async def _send_stream(
    request: web.Request, query_id: str, stream: ResultStream, started_ns: int
) -> web.StreamResponse:
    app = request.app
    metrics = app[_METRICS]
    headers = _common_headers(app, query_id)
    headers["X-ClickHouse-Format"] = stream.fmt
    headers["Content-Type"] = content_type_of(stream.fmt)
    # like ClickHouse without wait_end_of_query, the summary is the progress when headers go out:
    # chdb's block stream reports none, so it says only how long the first block took
    headers["X-ClickHouse-Summary"] = orjson.dumps(
        {"read_rows": "0", "read_bytes": "0", "written_rows": "0", "written_bytes": "0",
         "total_rows_to_read": "0", "result_bytes": "0", "elapsed_ns": str(time.perf_counter_ns() - started_ns)}
    ).decode()
    response = web.StreamResponse(headers=headers)
    try:
        await response.prepare(request)
        while chunk := await stream.next_chunk():
            await response.write(chunk)
        metrics.requests.labels("select", "200").inc()
    except EngineError as exc:
        # the status line is gone already: ClickHouse appends the exception to the body, so do we
        metrics.errors.labels(str(exc.code)).inc()
        metrics.requests.labels("select", "200-broken").inc()
        log.warning("statement failed mid-stream", extra={"query_id": query_id, "code": exc.code, "error": exc.text[:500]})
        await response.write(f"{exc.text} (version {app[_ENGINE].version})\n".encode())
    except ConnectionError:
        metrics.requests.labels("select", "client-gone").inc()
        log.info("client went away mid-stream; query cancelled", extra={"query_id": query_id})
        return response
    finally:
        await stream.close()
    await response.write_eof()
    return response


def _ok_response(app: web.Application, query_id: str, outcome: Outcome) -> web.Response:
    headers = _common_headers(app, query_id)
    headers["X-ClickHouse-Summary"] = orjson.dumps(outcome.summary()).decode()
    if outcome.fmt:
        headers["X-ClickHouse-Format"] = outcome.fmt
        headers["Content-Type"] = content_type_of(outcome.fmt)
    else:
        headers["Content-Type"] = "text/plain; charset=UTF-8"
    return web.Response(body=outcome.body, headers=headers)


async def _handle_ping(_: web.Request) -> web.Response:
    return web.Response(text="Ok.\n")


def health_of(app: web.Application) -> tuple[bool, dict[str, Any]]:
    """Health detail: engine version, data dir, uptime and statements running now."""
    settings = app[_SETTINGS]
    engine = app[_ENGINE]
    detail: dict[str, Any] = {
        "service": "warehouse",
        "version": engine.version,
        "data_dir": str(settings.data_dir),
        "uptime_s": round(time.monotonic() - app[_STARTED], 3),
        "in_flight": app[_METRICS].running,
        "sessions": engine.session_count,
    }
    return True, detail


async def _handle_health(request: web.Request) -> web.Response:
    engine = request.app[_ENGINE]
    ok, detail = health_of(request.app)
    try:
        await asyncio.wait_for(engine.run(parse_request({"query": "SELECT 1"}, b"")), timeout=5.0)
    except (EngineError, TimeoutError) as exc:
        ok, detail["error"] = False, str(exc) or "engine did not answer SELECT 1 within 5 s"
    return web.Response(
        body=orjson.dumps({"ok": ok, **detail}), status=200 if ok else 503, content_type="application/json"
    )


async def _handle_metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[_METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_app(settings: WarehouseSettings, engine: Engine, metrics: WarehouseMetrics | None = None) -> web.Application:
    """Assemble the aiohttp application around an open engine."""
    # ClickHouse reads URLs up to http_max_uri_size (1 MiB): a GET's statement lives in its URL
    app = web.Application(
        client_max_size=settings.max_request_bytes,
        handler_args={"max_line_size": _MAX_URI_BYTES, "max_field_size": _MAX_URI_BYTES},
    )
    app[_ENGINE] = engine
    app[_SETTINGS] = settings
    app[_METRICS] = metrics or WarehouseMetrics()
    app[_STARTED] = time.monotonic()
    app.router.add_get("/", _handle_query)
    app.router.add_post("/", _handle_query)
    app.router.add_get("/ping", _handle_ping)
    app.router.add_get("/replicas_status", _handle_ping)  # ClickHouse's other probe; no replicas here
    app.router.add_get("/health", _handle_health)
    app.router.add_get("/metrics", _handle_metrics)
    return app


async def _expire_sessions(engine: Engine) -> None:
    while True:
        await asyncio.sleep(_SESSION_SWEEP_S)
        try:
            engine.expire_sessions()
        except Exception:  # task boundary: a failed close must not end the sweeping
            log.exception("closing expired sessions failed")


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


class UnsafeBindError(RuntimeError):
    """Listening beyond loopback without a password: anyone who can reach the port could run any statement."""

    retriable = False


def check_bind(settings: WarehouseSettings) -> None:
    """Refuse to serve beyond loopback without a password (ClickHouse's default user is loopback-only)."""
    if not _is_loopback(settings.host) and not settings.password:
        raise UnsafeBindError(
            f"refusing to listen on {settings.host} without a password: set TICKPIPE_WAREHOUSE__PASSWORD "
            "(and __USER), or listen on 127.0.0.1"
        )


async def serve(settings: WarehouseSettings, stop: asyncio.Event | None = None) -> None:
    """Open the store, serve until SIGTERM/SIGINT (or ``stop``), finish in-flight requests, close."""
    check_bind(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settings = settings.model_copy(update={
        "data_dir": settings.data_dir.resolve(),
        "spool_dir": settings.spool_dir.resolve() if settings.spool_dir else None,
        "user_files_dir": settings.user_files_dir.resolve() if settings.user_files_dir else None,
    })
    # clickhouse-local's default database answers a table name that is a path with that file, relative
    # names from the working directory: run in the user files directory, or in an empty one
    no_files = None if settings.user_files_dir else tempfile.TemporaryDirectory(prefix="tickpipe-warehouse-cwd-")
    os.chdir(settings.user_files_dir or no_files.name)  # type: ignore[union-attr]
    engine = Engine(settings.data_dir, settings.workers, settings.spool_dir, settings.user_files_dir,
                    settings.allow_network_sources)
    # auto_decompress=False: aiohttp would inflate gzip/deflate/zstd itself but not lz4; decoding
    # every Content-Encoding in one place keeps the body handling uniform
    runner = web.AppRunner(
        build_app(settings, engine), access_log=None, shutdown_timeout=settings.shutdown_timeout_s,
        auto_decompress=False,
    )
    expiry = asyncio.create_task(_expire_sessions(engine))
    try:
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        log.info(
            "warehouse listening",
            extra={"host": settings.host, "port": settings.port, "data_dir": str(settings.data_dir),
                   "version": engine.version, "workers": settings.workers},
        )
        await stop.wait()
        log.info("stopping: finishing in-flight requests")
    finally:
        expiry.cancel()
        await runner.cleanup()
        engine.close()
        if no_files is not None:
            no_files.cleanup()
        log.info("warehouse stopped, store closed", extra={"data_dir": str(settings.data_dir)})
