"""CLI commands of the sink and the analyst's side: ``sink``, ``sql``, ``report spread|latency|execution``."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from infra.cli import settings_of
from infra.extras import require

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from infra.settings import Settings

URL_HELP = "ClickHouse HTTP URL (default: TICKPIPE_WAREHOUSE__URL, the local warehouse)"
DB_HELP = "database (default: TICKPIPE_WAREHOUSE__DATABASE)"


def register(app: typer.Typer) -> None:
    """Add ``sink``, ``sql`` and ``report`` to the root ``tickpipe`` app."""

    @app.command("sink")
    def sink_command(
        ctx: typer.Context,
        topics: str = typer.Option(None, "--topics", help="comma-separated topics (default: setting, else every topic)"),
    ) -> None:
        """Archive Kafka topics into ClickHouse (one table per topic), committing offsets after each insert."""
        from infra.logs import configure_logging
        from sinks.service import run_sink, selected_topics

        settings = settings_of(ctx)
        configure_logging("sink", settings.log_level)
        try:
            names = selected_topics(topics if topics is not None else settings.sink.topics)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--topics") from None
        run_sink(settings, names)

    @app.command("sql")
    def sql_command(
        ctx: typer.Context,
        query: str = typer.Argument(None, help="statement to run; omit for an interactive prompt with history"),
        output: str = typer.Option("table", "--format", "-f", help="table, csv or json (one JSON object a line)"),
        url: str = typer.Option(None, "--url", help=URL_HELP),
        database: str = typer.Option(None, "--database", "-d", help=DB_HELP),
    ) -> None:
        """Query the archive: aligned table, CSV or JSON lines; no query opens a prompt."""
        from sinks.sql_shell import OutputFormat, interactive, run_statement

        settings = settings_of(ctx)
        try:
            fmt = OutputFormat(output)
        except ValueError:
            raise typer.BadParameter("choose table, csv or json", param_hint="--format") from None
        client = _client(settings, url, database)
        try:
            if query is None:
                interactive(client, fmt, settings.home / "sql_history")
                return
            try:
                sys.stdout.write(run_statement(client, query, fmt))
            except Exception as exc:  # noqa: BLE001 (the server's message is the useful part)
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from None
        finally:
            client.close()

    report = typer.Typer(help="Research reports (PNG) read from the archive.", no_args_is_help=True)
    app.add_typer(report, name="report")

    @report.command("spread")
    def spread_command(
        ctx: typer.Context,
        symbol: str = typer.Option(..., "--symbol", help="instrument symbol, e.g. BTCUSDT"),
        venue: str = typer.Option("binance", "--venue", help="venue id"),
        since: str = typer.Option("1h", "--since", help="window ending now: 90s, 15m, 1h, 2d"),
        out: Path = typer.Option(Path("spread.png"), "--out", help="PNG to write"),
        outage_after_s: float = typer.Option(5.0, "--outage-after", help="seconds without BBO that count as outage"),
        url: str = typer.Option(None, "--url", help=URL_HELP),
        database: str = typer.Option(None, "--database", "-d", help=DB_HELP),
    ) -> None:
        """Plot the per-second spread with feed-gap and outage intervals shaded."""
        require("research", "report spread")
        from sinks.research.spread import spread_report

        client = _client(settings_of(ctx), url, database)
        try:
            result = spread_report(client, venue, symbol, _since(since), out, outage_after_s)
        finally:
            client.close()
        typer.echo(f"{result.path}: {result.seconds} s of BBO, {result.feed_gaps} feed gap(s), "
                   f"{result.outages} outage(s)")

    @report.command("latency")
    def latency_command(
        ctx: typer.Context,
        since: str = typer.Option("1h", "--since", help="window ending now: 90s, 15m, 1h, 2d"),
        out: Path = typer.Option(Path("latency.png"), "--out", help="PNG to write"),
        url: str = typer.Option(None, "--url", help=URL_HELP),
        database: str = typer.Option(None, "--database", "-d", help=DB_HELP),
    ) -> None:
        """Plot the latency distribution of every hop (box plot, log scale)."""
        require("research", "report latency")
        from sinks.research.latency import latency_report

        client = _client(settings_of(ctx), url, database)
        try:
            result = latency_report(client, _since(since), out)
        finally:
            client.close()
        hops = ", ".join(f"{label.replace(chr(10), ' ')}: {n}" for label, n in result.records.items()) or "no records"
        typer.echo(f"{result.path}: {hops}")

    @report.command("execution")
    def execution_command(
        ctx: typer.Context,
        since: str = typer.Option("1h", "--since", help="window ending now: 90s, 15m, 1h, 2d"),
        out: Path = typer.Option(Path("execution.png"), "--out", help="PNG to write"),
        csv_out: Path = typer.Option(None, "--csv", help="also write one row per model and instrument here"),
        backtest_id: str = typer.Option("", "--backtest-id", help="a `tickpipe backtest` run's results, whole "
                                                                  "(--since then unused); default: the live records"),
        url: str = typer.Option(None, "--url", help=URL_HELP),
        database: str = typer.Option(None, "--database", "-d", help=DB_HELP),
    ) -> None:
        """Plot slippage, markouts, PnL per model and the passive fill ratio from the execution views."""
        require("research", "report execution")
        from sinks.research.archive import Archive
        from sinks.research.execution import execution_report

        window = _since(since)
        with Archive(_client(settings_of(ctx), url, database)) as archive:
            result = execution_report(archive, window, out, csv_out, backtest_id)
        written = f"{result.path}" + (f", {result.csv_path}" if result.csv_path else "")
        typer.echo(f"{written}: {result.orders} order(s), {result.fills} fill(s), "
                   f"models: {', '.join(m or '(no signal)' for m in result.models) or 'none'}")


    @report.command("compare")
    def compare_command(
        ctx: typer.Context,
        backtest_id: str = typer.Option(..., "--backtest-id", help="the `tickpipe backtest` run to set beside live trading"),
        start: str = typer.Option(..., "--from", help="window start (signals' input receive time): ISO 8601, naive = UTC, "
                                                     "or ns"),
        end: str = typer.Option(..., "--to", help="window end, exclusive"),
        csv_out: Path = typer.Option(None, "--csv", help="also write the table here"),
        venue: str = typer.Option(None, "--venue", help="venue traded (default: TICKPIPE_EXECUTOR__VENUE, as the backtest)"),
        url: str = typer.Option(None, "--url", help=URL_HELP),
        database: str = typer.Option(None, "--database", "-d", help=DB_HELP),
    ) -> None:
        """Live trading and a backtest of the same window side by side: signals (and ids in both), orders, fills,
        maker share, slippage, fees and PnL."""
        require("research", "report compare")
        from sinks.research.archive import Archive
        from sinks.research.compare import live_vs_backtest, write_comparison

        settings = settings_of(ctx)
        with Archive(_client(settings, url, database)) as archive:
            table = live_vs_backtest(archive, backtest_id, venue or settings.executor.venue, _time(start), _time(end))
        width = max(len(m) for m in table["metric"])
        typer.echo(f"{'metric':<{width}}  {'live':>24}  {'backtest ' + backtest_id:>24}")
        for metric, live, test in table.itertuples(index=False):
            typer.echo(f"{metric:<{width}}  {_cell(live):>24}  {_cell(test):>24}")
        if csv_out is not None:
            write_comparison(table, csv_out)


def _time(text: str) -> str | int:
    # ns since the epoch, or anything pandas.Timestamp reads
    return int(text) if text.strip().isdigit() else text


def _cell(value: object) -> str:
    return "-" if value is None else format(value, "f") if isinstance(value, Decimal) else str(value)


def _client(settings: Settings, url: str | None, database: str | None) -> Client:
    from sinks.client import connect

    try:
        return connect(settings.warehouse, url=url, database=database or "")
    except Exception as exc:  # noqa: BLE001 (unreachable server, unknown database, bad credentials)
        typer.echo(f"error: cannot use ClickHouse at {url or settings.warehouse.url}: {str(exc)[:300]}", err=True)
        raise typer.Exit(2) from None


def _since(text: str) -> int:
    from sinks.research.window import parse_duration_s

    try:
        return parse_duration_s(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
