"""Open a clickhouse-connect client on the warehouse URL: any ClickHouse HTTP endpoint or ``chdb://``."""

from __future__ import annotations

from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from infra.settings import WarehouseSettings


def connect(
    warehouse: WarehouseSettings,
    url: str | None = None,
    database: str | None = "",
    timeout_s: float = 30.0,
    compress: bool = False,
) -> Client:
    """Return a client for ``url`` (default ``warehouse.url``) using ``database`` (default ``warehouse.database``).

    ``database=None`` opens the server's default database (to create ours). ``chdb:///path`` opens
    an in-process engine (single-process use only). Sessions are off: the sink, ``tickpipe sql``
    and reports may query concurrently, and the warehouse needs no session state.
    """
    target = url or warehouse.url
    db = warehouse.database if database == "" else database
    if target.startswith("chdb:"):
        return clickhouse_connect.get_client(dsn=target, database=db or None)
    parts = urlsplit(target)
    optional = {"database": db} if db else {}
    return clickhouse_connect.get_client(
        interface=parts.scheme or "http",
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8443 if parts.scheme == "https" else 8123),
        username=parts.username or warehouse.user,
        password=parts.password or warehouse.password,
        autogenerate_session_id=False,
        compress=compress,
        send_receive_timeout=timeout_s,
        connect_timeout=min(timeout_s, 10.0),
        **optional,
    )
