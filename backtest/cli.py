"""``tickpipe backtest``: replay a window of the archive through the streams and executor code."""

from __future__ import annotations

import secrets
import sys
from datetime import UTC, datetime

import typer

from infra.cli import settings_of


def parse_time_ns(text: str) -> int:
    """ISO 8601 (naive = UTC) or integer ns since the epoch, to ns."""
    if text.strip().isdigit():
        return int(text)
    at = datetime.fromisoformat(text.strip())
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000


def _utc(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def register(app: typer.Typer) -> None:
    """Add ``backtest`` to the root ``tickpipe`` app."""

    @app.command("backtest")
    def backtest_command(
        ctx: typer.Context,
        start: str = typer.Option(..., "--from", help="window start (receive time): ISO 8601, naive = UTC, or ns"),
        end: str = typer.Option(..., "--to", help="window end, exclusive"),
        symbols: str = typer.Option("", "--symbols", help="comma-separated symbols of the executor's venue "
                                                          "(default: every instrument the archive knows there)"),
        model: str = typer.Option("", "--model", help="signal model by name (default: the live one)"),
        seed: int = typer.Option(None, "--seed", help="latency seed (default: TICKPIPE_BACKTEST__SEED)"),
        backtest_id: str = typer.Option("", "--backtest-id", help="id of the results (default: bt-<UTC time>-<random>)"),
        url: str = typer.Option(None, "--url", help="ClickHouse HTTP URL (default: TICKPIPE_WAREHOUSE__URL)"),
        database: str = typer.Option(None, "--database", "-d", help="database (default: TICKPIPE_WAREHOUSE__DATABASE)"),
    ) -> None:
        """Replay archived market data in event-time order through the streams' signal pipeline and the executor's
        policy, risk and order lifecycle against matching on the archived book and trades; write the signals,
        orders and fills under a backtest_id (read them with `tickpipe report execution --backtest-id ID`)."""
        from backtest.driver import Summary, run_backtest
        from sinks.client import connect
        from streams.models import DEFAULT_MODEL, MODELS

        settings = settings_of(ctx)
        try:
            start_ns, end_ns = parse_time_ns(start), parse_time_ns(end)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if end_ns <= start_ns:
            raise typer.BadParameter("--to must be after --from")
        model = model or DEFAULT_MODEL
        if model not in MODELS:
            raise typer.BadParameter(f"unknown model {model!r}; known: {', '.join(sorted(MODELS))}", param_hint="--model")
        bid = backtest_id or f"bt-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        total_s = (end_ns - start_ns) / 1e9

        def progress(summary: Summary, at_ns: int) -> None:
            done = max(0, at_ns - start_ns) / 1e9  # 0 % while the books warm up before the window
            sys.stderr.write(f"\r{bid}: archive at {_utc(at_ns)} ({done / total_s:.0%}), {summary.events:,} records, "
                             f"{summary.signals:,} signals")
            sys.stderr.flush()

        client = connect(settings.warehouse, url=url, database=database or "")
        try:
            symbol_list = [x.strip() for x in symbols.split(",") if x.strip()]
            summary, latency = run_backtest(client, settings, bid, start_ns, end_ns, symbol_list, model,
                                            settings.backtest.seed if seed is None else seed, progress)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        finally:
            client.close()
        sys.stderr.write("\n")
        typer.echo(f"backtest_id {bid}: {_utc(start_ns)} .. {_utc(end_ns)} UTC, model {model}")
        for hop, text in latency.describe().items():
            typer.echo(f"  latency {hop}: {text}")
        typer.echo(f"  {summary.events:,} archived records ({summary.warmup_events:,} before the window, rebuilding the "
                   f"books from their last snapshot) in {summary.wall_s:.1f} s ({summary.events_per_s:,.0f}/s, "
                   f"{summary.archive_s / summary.wall_s if summary.wall_s else 0:,.1f}x real time)")
        typer.echo(f"  signals {summary.signals} (stale on arrival {summary.stale_signals}), order events "
                   f"{summary.orders}, fills {summary.fills}")
        for symbol, (qty, pnl) in summary.positions.items():
            typer.echo(f"  {symbol}: position {qty}, realised PnL {pnl} (average cost, quote units)")
        typer.echo(f"  report: tickpipe report execution --backtest-id {bid}")
