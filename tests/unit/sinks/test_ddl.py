"""DDL derived from the Avro schemas: committed files current, types, and the real engine accepts it all."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from infra.backoff import Backoff
from infra.settings import WarehouseSettings
from schemas.registry import released_raw_schema
from schemas.topics import Topic
from sinks.client import connect
from sinks.ddl import DDL_DIR, all_table_specs, ddl_files, table_spec
from sinks.migrate import MigrationReport, ensure_database, migrate, sql_statements
from sinks.writer import ArchiveWriter


def test_committed_ddl_files_match_the_schemas() -> None:
    for name, sql in ddl_files().items():
        text = (DDL_DIR / name).read_text()
        assert text.endswith(sql), f"sinks/ddl/{name} is stale: run python -m sinks.ddl"


def test_one_table_per_topic_with_typed_columns() -> None:
    assert [s.topic for s in all_table_specs()] == [t.value for t in Topic]
    types = {c.name: c.type for c in table_spec("md.trades").columns}
    assert types["price"] == types["qty"] == "Decimal(38, 18)"
    assert types["ts_event"] == "DateTime64(9, 'UTC')"
    assert types["venue"] == types["symbol"] == "LowCardinality(String)"
    assert {c.name: c.type for c in table_spec("bars.1m").columns}["start"] == "DateTime64(9, 'UTC')"
    assert {c.name: c.type for c in table_spec("orders").columns}["price"] == "Nullable(Decimal(38, 18))"


def test_views_file_splits_into_statements() -> None:
    statements = sql_statements(Path("sinks/views.sql").read_text())
    assert len(statements) > 15 and all(s.startswith("CREATE") for s in statements)


@pytest.fixture
def chdb_client(tmp_path: Path) -> Iterator[Client]:
    url = f"chdb://{tmp_path}/store"
    ensure_database(connect(WarehouseSettings(), url=url, database=None), "tickpipe")
    client = connect(WarehouseSettings(), url=url)
    yield client
    client.close()


def test_migration_creates_everything_then_is_idempotent_and_adds_new_columns(chdb_client: Client) -> None:
    first = migrate(chdb_client, "tickpipe")
    assert set(first.created_tables) == {s.name for s in all_table_specs()} | {"dead_letters"}
    chdb_client.command("ALTER TABLE orders DROP COLUMN reason")  # as if the schema gained reason later
    second = migrate(chdb_client, "tickpipe")
    assert second.created_tables == [] and second.added_columns == ["orders.reason"]
    assert second.type_mismatches == []
    assert migrate(chdb_client, "tickpipe").added_columns == []


def test_retried_batch_with_same_token_lands_once_in_table_and_views(chdb_client: Client) -> None:
    from sinks.batcher import Batcher
    from sinks.rows import RowMapper

    migrate(chdb_client, "tickpipe")
    spec = table_spec("md.trades")
    batcher = Batcher(100, 100)
    for i in range(5):
        record = {"venue": "binance", "symbol": "BTCUSDT", "trade_id": i, "price": "100.5", "qty": "0.00000001",
                  "side": "buy", "ts_event": 1_700_000_000_000_000_000 + i, "ts_recv": 1_700_000_000_000_000_100 + i}
        batcher.add_row(spec.name, RowMapper(spec).row(record, "md.trades", 0, i), "md.trades", 0, i, 0)
    batch = batcher.take()
    writer = ArchiveWriter(chdb_client, {spec.name: spec}, Backoff())
    import threading

    assert writer.write(batch, threading.Event()) and writer.write(batch, threading.Event())
    assert chdb_client.query("SELECT count() FROM md_trades").result_rows == [(5,)]
    assert chdb_client.query("SELECT trades, volume FROM ohlcv_1m").result_rows == [(5, Decimal("0.00000005"))]


_OLD_1M_VIEW = """CREATE MATERIALIZED VIEW ohlcv_1m_mv TO ohlcv_1m_state AS
SELECT venue, symbol, toDateTime(toStartOfInterval(ts_event, INTERVAL 1 MINUTE), 'UTC') AS bucket,
    argMinState(price, (ts_event, trade_id)) AS open, max(price) AS high, min(price) AS low,
    argMaxState(price, (ts_event, trade_id)) AS close, sum(qty) AS volume,
    sumIf(qty, side = 'buy') AS buy_volume, sum(toDecimal256(price, 18) * qty) AS quote_volume,
    toUInt64(count()) AS trades, min(trade_id) AS first_trade_id, max(trade_id) AS last_trade_id
FROM md_trades GROUP BY venue, symbol, bucket"""


def _migrate_twice_from(client: Client, view: str, old_sql: str) -> tuple[MigrationReport, MigrationReport]:
    """Migrate a fresh archive, put ``view`` back as ``old_sql`` made it, then migrate twice more."""
    migrate(client, "tickpipe")
    client.command(f"DROP VIEW {view}")
    client.command(old_sql)
    return migrate(client, "tickpipe"), migrate(client, "tickpipe")


def test_older_ohlcv_views_reading_trades_are_rewired_into_the_chain_and_stay_exact(chdb_client: Client) -> None:
    # Arrange + Act: an archive from before the chain (1 m fed by md_trades directly), migrated twice
    report, again = _migrate_twice_from(chdb_client, "ohlcv_1m_mv", _OLD_1M_VIEW)
    chdb_client.command(
        "INSERT INTO md_trades (venue, symbol, trade_id, price, qty, side, ts_event, ts_recv, _topic, _partition, _offset) "
        "SELECT 'binance', ['BTCUSDT', 'ETHUSDT'][number % 2 + 1], number, toDecimal128(60000 + (number * 7919) % 1000, 18) "
        "/ 100, toDecimal128((number % 13) + 1, 18) / 1000, ['buy', 'sell'][number % 2 + 1], "
        "toDateTime64(1700000000, 9, 'UTC') + toIntervalMillisecond(number * 7919 % 10800000), "
        "toDateTime64(1700000000, 9, 'UTC'), 'md.trades', 0, number FROM numbers(5000)")
    # Assert: the views (1 s -> 1 m -> 1 h states) equal a direct aggregation of the trades
    assert report.rewired_views == ["ohlcv_1m_mv"] and again.rewired_views == []
    for view, unit in (("ohlcv_1s", "SECOND"), ("ohlcv_1m", "MINUTE"), ("ohlcv_1h", "HOUR")):
        direct = chdb_client.query(
            f"SELECT venue, symbol, toStartOfInterval(ts_event, INTERVAL 1 {unit}) AS b, "
            "argMin(price, (ts_event, trade_id)), max(price), min(price), argMax(price, (ts_event, trade_id)), "
            "sum(qty), sumIf(qty, side = 'buy'), toDecimal128(sum(toDecimal256(price, 18) * qty), 18), count(), "
            "min(trade_id), max(trade_id) FROM md_trades GROUP BY venue, symbol, b ORDER BY venue, symbol, b").result_rows
        viewed = chdb_client.query(
            f"SELECT venue, symbol, bucket, open, high, low, close, volume, buy_volume, quote_volume, trades, "
            f"first_trade_id, last_trade_id FROM {view} ORDER BY venue, symbol, bucket").result_rows
        assert [tuple(r[3:]) for r in viewed] == [tuple(r[3:]) for r in direct] and len(direct) >= 6, view


def test_an_archive_of_v1_fills_gains_the_account_column_and_old_rows_read_empty(chdb_client: Client) -> None:
    # Arrange: the fills table as the first release's Fill schema made it, with one row
    v1 = table_spec("fills", released_raw_schema("v1", "Fill"))
    assert "account" not in v1.column_names
    chdb_client.command(v1.create_sql())
    chdb_client.command("INSERT INTO fills (venue, symbol, trade_id, price, qty, fee, _topic, _partition, _offset) "
                        "VALUES ('binance', 'BTCUSDT', 7, 1, 1, 0, 'fills', 0, 0)")

    # Act
    report = migrate(chdb_client, "tickpipe")

    # Assert
    assert "fills.account" in report.added_columns and report.type_mismatches == []
    assert chdb_client.query("SELECT trade_id, account FROM fills").result_rows == [(7, "")]


_OLD_SIGNALS_LATENCY_VIEW = """CREATE MATERIALIZED VIEW hop_latency_signals_mv TO hop_latency_1m_state AS
SELECT 'recv->emit' AS hop, 'signals' AS source, venue, symbol,
       toDateTime(toStartOfInterval(ts_emit, INTERVAL 1 MINUTE), 'UTC') AS bucket,
       toUInt64(count()) AS records, sum(lat) AS total_ns, min(lat) AS min_ns, max(lat) AS max_ns,
       quantilesTDigestState(0.5, 0.9, 0.99)(lat) AS quantiles
FROM (SELECT *, toUnixTimestamp64Nano(ts_emit) - toUnixTimestamp64Nano(ts_recv) AS lat FROM signals)
GROUP BY venue, symbol, bucket"""


def test_a_materialized_view_whose_query_changed_is_rewired_once_and_then_counts_as_the_new_query_says(
        chdb_client: Client) -> None:
    # Arrange + Act: an archive from before backtests (the 1-minute latency summary counted every signal), migrated twice
    report, again = _migrate_twice_from(chdb_client, "hop_latency_signals_mv", _OLD_SIGNALS_LATENCY_VIEW)
    chdb_client.command(
        "INSERT INTO signals (signal_id, venue, symbol, side, strength, target, model, expires_at, reference_price, "
        "inputs, ts_event, ts_recv, ts_emit, backtest_id, _topic, _partition, _offset) SELECT toString(number), "
        "'binance', 'BTCUSDT', 'buy', 0.5, 1, 'm', now64(9), 1, [], now64(9), now64(9), now64(9), "
        "if(number < 3, '', 'bt1'), 'signals', 0, number FROM numbers(10)")
    # Assert: only the 3 live signals reach the summary; nothing to rewire the second time
    assert report.rewired_views == ["hop_latency_signals_mv"] and again.rewired_views == []
    counted = chdb_client.query("SELECT sum(records) FROM hop_latency_1m_state WHERE source = 'signals'").result_rows
    assert counted == [(3,)]
