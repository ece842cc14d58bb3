"""``tickpipe streams``: the Faust stream processors."""

from __future__ import annotations

import typer

from infra.cli import settings_of


def register(app: typer.Typer) -> None:
    """Add ``tickpipe streams worker`` to the root app."""
    streams = typer.Typer(help="Faust stream processors: book/flow features, bars, signals.", no_args_is_help=True)

    @streams.command("worker")
    def worker(ctx: typer.Context) -> None:
        """Run one worker; start more (same app id) to share the partitions."""
        from infra.logs import configure_logging
        from streams.worker import run_worker

        settings = settings_of(ctx)
        configure_logging("streams", settings.log_level)
        run_worker(settings)

    app.add_typer(streams, name="streams")
