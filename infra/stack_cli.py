"""CLI commands of the local stack: broker, topics."""

from __future__ import annotations

import signal
import sys

import typer
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer) -> None:
    """Add the stack commands to the root ``tickpipe`` app."""
    from infra.cli import settings_of

    topics_app = typer.Typer(help="Create and list Kafka topics.", no_args_is_help=True)
    app.add_typer(topics_app, name="topics")

    @topics_app.command("create")
    def topics_create(ctx: typer.Context) -> None:
        """Create every tickpipe topic (idempotent; partitions and retention from settings)."""
        from infra.topics import create_topics

        created = create_topics(settings_of(ctx).kafka)
        typer.echo(f"created {len(created)} topic(s): {', '.join(created) or '-'}")

    @topics_app.command("list")
    def topics_list(ctx: typer.Context) -> None:
        """List topics with partition counts and end offsets."""
        from infra.topics import describe_topics

        table = Table("topic", "partitions", "end offsets", "messages")
        for info in describe_topics(settings_of(ctx).kafka):
            table.add_row(info.name, str(info.partitions), ",".join(map(str, info.end_offsets)), str(info.messages))
        Console().print(table)

    @app.command("broker")
    def broker(ctx: typer.Context) -> None:
        """Run the local tansu broker in the foreground; ready once a metadata request succeeds."""
        from infra.broker import BrokerError, start_broker
        from infra.logs import configure_logging

        settings = settings_of(ctx)
        configure_logging("broker", settings.log_level)
        try:
            proc = start_broker(settings.broker.host, settings.broker.port, timeout_s=settings.broker.start_timeout_s)
        except BrokerError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"broker ready on {settings.broker.host}:{settings.broker.port} (pid {proc.pid})")
        signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
        sys.exit(proc.wait())
