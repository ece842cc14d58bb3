"""``tickpipe sim-exchange``: the simulated Binance-spot-compatible exchange."""

from __future__ import annotations

import typer

from infra.cli import settings_of


def register(app: typer.Typer) -> None:
    """Add ``sim-exchange`` to the root ``tickpipe`` app."""

    @app.command("sim-exchange")
    def sim_exchange(
        ctx: typer.Context,
        symbols: str = typer.Option(None, help="comma-separated symbols, e.g. BTCUSDT,ETHUSDT"),
        seed: int = typer.Option(None, help="random seed of the background order flow"),
        port: int = typer.Option(None, help="REST + websocket port"),
        host: str = typer.Option(None, help="listen address"),
        events_per_s: float = typer.Option(None, "--events-per-s", help="background book events per second"),
        account: list[str] = typer.Option(
            None, "--account", help="extra account KEY:SECRET[:MAKER_FEE:TAKER_FEE] (repeatable)"
        ),
        fault: str = typer.Option(None, "--faults", help="faults JSON applied at start (as POST /_sim/faults)"),
        ping_interval_s: float = typer.Option(None, help="server ping interval (s)"),
        pong_timeout_s: float = typer.Option(None, help="disconnect after this long without pong (s)"),
        max_connection_s: float = typer.Option(None, help="connection lifetime limit (s)"),
        weight_limit: int = typer.Option(None, "--weight-limit", help="REQUEST_WEIGHT per minute"),
        set_: list[str] = typer.Option(
            None, "--set", help="any SimExchangeSettings field as NAME=VALUE, e.g. --set depth_fast_ms=50 (repeatable)"
        ),
    ) -> None:
        """Serve a simulated Binance spot exchange (REST + websockets on one port)."""
        from infra.logs import configure_logging
        from infra.sim_exchange.server import serve

        settings = settings_of(ctx)
        overrides = {
            "symbols": symbols,
            "seed": seed,
            "port": port,
            "host": host,
            "events_per_s": events_per_s,
            "faults": fault,
            "ping_interval_s": ping_interval_s,
            "pong_timeout_s": pong_timeout_s,
            "max_connection_s": max_connection_s,
            "weight_limit_1m": weight_limit,
        }
        values = settings.sim.model_dump()
        for item in set_ or []:
            name, sep, value = item.partition("=")
            if not sep or name not in values:
                raise typer.BadParameter(f"--set {item!r}: expected NAME=VALUE with NAME in {sorted(values)}")
            values[name] = value
        values.update({k: v for k, v in overrides.items() if v is not None})
        if account:
            values["accounts"] = ",".join([values["accounts"], *account])
        sim = type(settings.sim).model_validate(values)
        configure_logging("sim-exchange", settings.log_level)
        serve(sim)
