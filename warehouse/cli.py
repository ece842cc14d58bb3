"""``tickpipe warehouse``: run the chdb-backed ClickHouse HTTP endpoint in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infra.extras import require


def register(app: typer.Typer) -> None:
    """Add ``tickpipe warehouse`` to the root app."""
    from infra.cli import settings_of

    @app.command("warehouse")
    def warehouse(
        ctx: typer.Context,
        port: Annotated[int | None, typer.Option(help="listen port (default: settings warehouse.port)")] = None,
        host: Annotated[str | None, typer.Option(help="listen address (default: settings warehouse.host)")] = None,
        data_dir: Annotated[Path | None, typer.Option(help="chdb store (default: settings warehouse.data_dir)")] = None,
    ) -> None:
        """Own the chdb store and serve the ClickHouse HTTP interface (stop with SIGTERM)."""
        require("local", "warehouse")
        import asyncio
        import logging

        from infra.broker import port_in_use
        from infra.logs import configure_logging
        from warehouse.engine import StoreError
        from warehouse.server import UnsafeBindError, serve

        settings = settings_of(ctx)
        overrides = {k: v for k, v in {"port": port, "host": host, "data_dir": data_dir}.items() if v is not None}
        wh = settings.warehouse.model_copy(update=overrides)
        configure_logging("warehouse", settings.log_level)
        if port_in_use(wh.host, wh.port):
            raise typer.BadParameter(f"port {wh.host}:{wh.port} is already in use", param_hint="--port")
        try:
            asyncio.run(serve(wh))
        except (StoreError, UnsafeBindError) as exc:
            logging.getLogger("warehouse").error("warehouse cannot start: %s", exc)
            raise typer.Exit(1) from None
