"""Every SQL example in docs/analysts.md runs against a known history; reports and `tickpipe sql` work on it."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from rich.console import Console
from typer.testing import CliRunner

from infra.cli import app
from infra.settings import KafkaSettings
from infra.top import Endpoints, Sampler, hot_path_view
from tests.integration.sinks.conftest import Archive, open_archive
from tests.integration.sinks.known_data import known_history, write_history

ANALYSTS_MD = Path(__file__).parents[3] / "docs" / "analysts.md"


def analyst_queries() -> list[str]:
    """Return the ```sql blocks of docs/analysts.md."""
    return re.findall(r"```sql\n(.*?)```", ANALYSTS_MD.read_text(), flags=re.DOTALL)


@pytest.fixture(scope="module")
def history_archive(warehouse_url: str) -> Iterator[tuple[Archive, dict]]:
    """A fresh database holding :func:`known_history`."""
    archive = open_archive(warehouse_url)
    history = known_history()
    write_history(archive.client, history)
    archive.client.command("INSERT INTO dead_letters (topic, partition, offset, raw, error) "
                           "VALUES ('md.trades', 0, 99, 'x', 'unknown framing')")
    yield archive, history
    archive.client.command(f"DROP DATABASE IF EXISTS {archive.warehouse.database}")


def python_examples() -> list[str]:
    """Return the ```python blocks of docs/analysts.md."""
    return re.findall(r"```python\n(.*?)```", ANALYSTS_MD.read_text(), flags=re.DOTALL)


def test_the_guide_has_at_least_ten_queries() -> None:
    assert len(analyst_queries()) >= 10


@pytest.mark.integration
@pytest.mark.timeout(120)
@pytest.mark.parametrize("number", range(len(analyst_queries())), ids=lambda n: f"query{n + 1}")
def test_every_documented_query_runs_and_returns_rows(history_archive: tuple[Archive, dict], number: int) -> None:
    archive, _ = history_archive
    rows = archive.client.query(analyst_queries()[number]).result_rows
    assert rows, f"query {number + 1} returned nothing on the known history"


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_documented_answers_match_the_known_history(history_archive: tuple[Archive, dict]) -> None:
    archive, history = history_archive
    queries = analyst_queries()
    counts = archive.client.query(queries[0]).result_rows
    assert sum(r[2] for r in counts) == len(history["md.trades"]) and all(r[5] == 0 for r in counts)
    gaps = archive.client.query(queries[6]).result_rows
    assert [(g[2], g[6]) for g in gaps] == [("disconnect", 5.0), ("gap", 2.0)]
    outages = archive.client.query(queries[7]).result_rows
    assert [r[3] for r in outages] == [21]  # 20 s without data: last bucket before, first after
    orders = archive.client.query(queries[11]).result_rows
    assert len(orders) == 20 and {r[2] for r in orders} == {"filled"}
    # cross-venue (query 19): 30 records, kraken stale (health:gap) in 5, each venue 0.0156 bps off the crossed mid
    per_venue = archive.client.query(queries[18]).result_rows
    assert [r[:3] + r[4:8] for r in per_venue] == [
        ("binance", 30, -0.013, 5, 30, 0, []),  # alone (0 bps, at both best prices) while kraken is stale
        ("kraken", 25, 0.0156, 25, 0, 5, ["health:gap"]),
    ]


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_order_latency_view_gives_every_hop_from_the_records_stamps(history_archive: tuple[Archive, dict]) -> None:
    archive, history = history_archive
    signals = {s["signal_id"]: s for s in history["signals"]}
    expected = {}
    for o in history["orders"]:
        if o["status"] != "new":
            continue
        s = signals[o["signal_id"]]
        expected[o["client_order_id"]] = (
            s["ts_recv"] - s["ts_event"], s["ts_md_ack"] - s["ts_recv"], s["ts_in"] - s["ts_md_ack"],
            s["ts_emit"] - s["ts_in"], o["ts_signal_ack"] - s["ts_emit"], o["ts_in"] - o["ts_signal_ack"],
            o["ts_sent"] - o["ts_in"], o["ts_event"] - o["ts_sent"], o["ts_recv"] - o["ts_sent"],
            s["ts_emit"] - s["ts_recv"], o["ts_sent"] - s["ts_recv"], o["ts_recv"] - s["ts_recv"], 1,
        )
    rows = archive.client.query(
        "SELECT client_order_id, venue_to_feed_ns, feed_to_md_ack_ns, md_ack_to_streams_ns, streams_to_signal_ns, "
        "signal_to_signal_ack_ns, signal_ack_to_executor_ns, executor_to_order_sent_ns, order_sent_to_venue_ack_ns, "
        "order_round_trip_ns, tick_to_signal_ns, tick_to_order_sent_ns, tick_to_venue_ack_ns, first_order "
        "FROM order_latency").result_rows
    assert {r[0]: tuple(int(v) for v in r[1:]) for r in rows} == expected


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_top_shows_the_hot_path_hop_by_hop_from_the_archive(history_archive: tuple[Archive, dict]) -> None:
    archive, history = history_archive
    sampler = Sampler(Endpoints(KafkaSettings(), archive.warehouse.url, archive.warehouse.database, None, None))
    console = Console(width=200, record=True)

    console.print(hot_path_view(sampler, window_s=3 * 3600))

    text = console.export_text()
    signals = {s["signal_id"]: s for s in history["signals"]}
    firsts = [o for o in history["orders"] if o["status"] == "new"]
    tick_to_sent = sorted(o["ts_sent"] - signals[o["signal_id"]]["ts_recv"] for o in firsts)
    assert f"{len(firsts)} orders" in text
    line = next(x for x in text.splitlines() if x.startswith("tick -> order sent"))
    assert line.split()[-2] == f"{tick_to_sent[len(tick_to_sent) // 2] / 1e6:.2f}", line


def _invoke(archive: Archive, args: list[str]) -> str:
    env = {"TICKPIPE_WAREHOUSE__URL": archive.warehouse.url, "TICKPIPE_WAREHOUSE__DATABASE": archive.warehouse.database}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_sql_command_prints_table_csv_and_json(history_archive: tuple[Archive, dict]) -> None:
    archive, history = history_archive
    query = "SELECT symbol, count() AS n, max(price) AS top FROM v_md_trades GROUP BY symbol"
    table = _invoke(archive, ["sql", query]).splitlines()
    assert table[0].split() == ["symbol", "|", "n", "|", "top"] and set(table[1]) <= {"-", "+"}
    assert table[-1] == "(1 row)"
    top = max(history["md.trades"], key=lambda t: float(t["price"]))["price"]
    rows = list(csv.reader(io.StringIO(_invoke(archive, ["sql", "--format", "csv", query]))))
    assert rows == [["symbol", "n", "top"], ["BTCUSDT", str(len(history["md.trades"])), top]]
    line = orjson.loads(_invoke(archive, ["sql", "-f", "json", query]).splitlines()[0])
    assert line["symbol"] == "BTCUSDT" and str(line["n"]) == str(len(history["md.trades"]))


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_reports_write_non_empty_pngs_of_the_known_history(history_archive: tuple[Archive, dict],
                                                           tmp_path: Path) -> None:
    archive, _ = history_archive
    spread_png, latency_png = tmp_path / "spread.png", tmp_path / "latency.png"
    spread = _invoke(archive, ["report", "spread", "--symbol", "BTCUSDT", "--since", "1h", "--out", str(spread_png)])
    latency = _invoke(archive, ["report", "latency", "--since", "1h", "--out", str(latency_png)])
    assert "2 feed gap(s), 1 outage(s)" in spread and "580 s of BBO" in spread
    assert "signal->order orders: 20" in latency and "event->recv md_trades: 2320" in latency
    for png in (spread_png, latency_png):
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_the_python_example_runs_on_the_known_history(history_archive: tuple[Archive, dict],
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    archive, history = history_archive
    monkeypatch.setenv("TICKPIPE_WAREHOUSE__URL", archive.warehouse.url)
    monkeypatch.setenv("TICKPIPE_WAREHOUSE__DATABASE", archive.warehouse.database)
    (example,) = python_examples()
    namespace: dict = {}

    exec(compile(example, str(ANALYSTS_MD), "exec"), namespace)  # noqa: S102 (the documented example itself)

    fills = history["fills"]
    assert namespace["notional"] == sum(Decimal(f["price"]) * Decimal(f["qty"]) for f in fills)
    assert len(namespace["trades"]) == len(history["md.trades"])
    assert list(namespace["last_pnl"]["model"]) == ["imbalance-v1"]
    assert f"{len(history['md.trades'])} trades" in capsys.readouterr().out
