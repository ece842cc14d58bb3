"""CLI commands: ``tickpipe executor``, ``tickpipe executor halt|resume``, ``tickpipe replay``."""

from __future__ import annotations

from datetime import datetime

import typer

from infra.cli import settings_of


def register(app: typer.Typer) -> None:
    """Add the executor's commands to the root ``tickpipe`` app."""
    executor_app = typer.Typer(help="Signals to exchange orders (risk-checked, passive first, replay-safe).")

    @executor_app.callback(invoke_without_command=True)
    def executor(
        ctx: typer.Context,
        venue: str = typer.Option("binance", help="venue to trade on"),
        rest_url: str = typer.Option(None, help="venue REST base URL (default: settings executor.rest_url)"),
    ) -> None:
        """Run the executor: consume `signals`, trade on the venue, publish `orders` and `fills`."""
        if ctx.invoked_subcommand is not None:
            return
        from executor.service import run_service

        run_service(settings_of(ctx), venue=venue, rest_url=rest_url, start_at=None)

    @executor_app.command("halt")
    def halt(ctx: typer.Context, reason: str = typer.Option("operator halt", help="why")) -> None:
        """Kill switch: cancel all open orders and refuse new ones until `resume` (signed control message)."""
        from executor.control import send_control
        from executor.risk import TradingState

        settings = settings_of(ctx)
        send_control(settings.kafka, settings.executor.control_topic, TradingState.HALTED, reason,
                     settings.executor.control_key)
        typer.echo(f"HALTED sent to {settings.executor.control_topic}")

    @executor_app.command("resume")
    def resume(ctx: typer.Context, reason: str = typer.Option("operator resume", help="why")) -> None:
        """Lift the kill switch: trading state back to ACTIVE."""
        from executor.control import send_control
        from executor.risk import TradingState

        settings = settings_of(ctx)
        send_control(settings.kafka, settings.executor.control_topic, TradingState.ACTIVE, reason,
                     settings.executor.control_key)
        typer.echo(f"ACTIVE sent to {settings.executor.control_topic}")

    app.add_typer(executor_app, name="executor")

    @app.command("replay")
    def replay(
        ctx: typer.Context,
        topic: str = typer.Option("signals", help="topic to replay (only `signals`)"),
        from_offset: int = typer.Option(None, help="start every partition at this offset"),
        from_time: datetime = typer.Option(None, help="start at the first message at/after this time (UTC)"),
        venue: str = typer.Option("binance", help="venue to trade on"),
        rest_url: str = typer.Option(None, help="venue REST base URL"),
    ) -> None:
        """Reprocess signals from an offset or a time with the executor's guarantees (no duplicate orders)."""
        from executor.intake import StartAt
        from executor.service import run_service

        if topic != "signals":
            raise typer.BadParameter("only the `signals` topic can be replayed", param_hint="--topic")
        if (from_offset is None) == (from_time is None):
            raise typer.BadParameter("give exactly one of --from-offset and --from-time")
        if from_time is not None:
            stamp = from_time if from_time.tzinfo else from_time.replace(tzinfo=datetime.now().astimezone().tzinfo)
            start = StartAt(time_ns=int(stamp.timestamp() * 1e9))
        else:
            start = StartAt(offset=from_offset)
        run_service(settings_of(ctx), venue=venue, rest_url=rest_url, start_at=start)
