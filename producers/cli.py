"""``tickpipe feed``, ``tickpipe record`` and ``tickpipe playback``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infra.cli import settings_of


def _symbols(text: str) -> list[str]:
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not symbols:
        raise typer.BadParameter("give at least one symbol")
    return symbols


def register(app: typer.Typer) -> None:
    """Add the feed commands to the root ``tickpipe`` app."""

    @app.command()
    def feed(
        ctx: typer.Context,
        venue: Annotated[str, typer.Argument(help="venue id, e.g. binance")],
        symbols: Annotated[str | None, typer.Option(help="comma-separated symbols (default: settings)")] = None,
        connections: Annotated[int | None, typer.Option(min=1, help="redundant connections")] = None,
        ws_url: Annotated[str | None, typer.Option(help="websocket base URL")] = None,
        rest_url: Annotated[str | None, typer.Option(help="REST base URL")] = None,
        metrics_port: Annotated[int | None, typer.Option(help="/metrics + /health port (0 = any free)")] = None,
    ) -> None:
        """Hold the venue's websockets and publish trades, book deltas, BBOs and health to Kafka."""
        from producers.runner import run_feed

        settings = settings_of(ctx)
        feed_settings = settings.feed.model_copy(update={
            k: v for k, v in {
                "venue": venue, "symbols": symbols, "connections": connections, "ws_url": ws_url,
                "rest_url": rest_url, "metrics_port": metrics_port,
            }.items() if v is not None
        })
        raise typer.Exit(run_feed(settings, feed_settings, _symbols(feed_settings.symbols)))

    @app.command()
    def record(
        ctx: typer.Context,
        venue: Annotated[str, typer.Argument(help="venue id, e.g. binance")],
        out: Annotated[Path, typer.Option(help="recording file (JSON Lines) to write")],
        symbols: Annotated[str | None, typer.Option(help="comma-separated symbols (default: settings)")] = None,
        seconds: Annotated[float, typer.Option(help="stop after this long; 0 = until SIGINT/SIGTERM")] = 0.0,
        ws_url: Annotated[str | None, typer.Option(help="websocket base URL")] = None,
        rest_url: Annotated[str | None, typer.Option(help="REST base URL")] = None,
    ) -> None:
        """Capture raw frames and REST snapshots to a file (one connection, no Kafka)."""
        from producers.runner import run_record

        settings = settings_of(ctx)
        feed_settings = settings.feed.model_copy(update={
            k: v for k, v in {"venue": venue, "symbols": symbols, "ws_url": ws_url, "rest_url": rest_url}.items()
            if v is not None
        })
        raise typer.Exit(run_record(settings, feed_settings, _symbols(feed_settings.symbols), out, seconds))

    @app.command()
    def playback(
        ctx: typer.Context,
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="recording to replay")],
        venue: Annotated[str, typer.Option(help="venue whose parser reads the recording")] = "binance",
        final_books: Annotated[int, typer.Option(min=0, help="then print the top N levels of every book")] = 0,
        to_kafka: Annotated[bool, typer.Option(help="publish to Kafka instead of printing")] = False,
    ) -> None:
        """Replay a recording through the live parser and book code; print JSON Lines or publish."""
        from producers.runner import run_playback

        raise typer.Exit(run_playback(settings_of(ctx), venue, file, final_books, to_kafka))
