"""CLI commands of the sink and the analyst's side: ``sink``, ``sql``, ``report``."""

from __future__ import annotations

from pathlib import Path

import typer

from infra.cli import settings_of


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
