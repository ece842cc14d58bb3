"""``tickpipe sim-exchange``: the simulated Binance-spot-compatible exchange."""

from __future__ import annotations

from typing import Annotated

import typer

from infra.cli import settings_of


def register(app: typer.Typer) -> None:
    """Add ``sim-exchange`` to the root ``tickpipe`` app."""

    @app.command("sim-exchange")
    def sim_exchange(
        ctx: typer.Context,
        symbols: Annotated[str | None, typer.Option(help="comma-separated symbols, e.g. BTCUSDT,ETHUSDT")] = None,
        seed: Annotated[int | None, typer.Option(help="random seed of the background order flow")] = None,
        port: Annotated[int | None, typer.Option(help="REST + websocket port")] = None,
        host: Annotated[str | None, typer.Option(help="listen address")] = None,
        events_per_s: Annotated[
            float | None, typer.Option("--events-per-s", help="background book events per second")
        ] = None,
        account: Annotated[
            list[str] | None, typer.Option("--account", help="extra account KEY:SECRET[:MAKER_FEE:TAKER_FEE] (repeatable)")
        ] = None,
        faults: Annotated[str | None, typer.Option("--faults", help="faults JSON applied at start (as POST /_sim/faults)")] = None,
        ping_interval_s: Annotated[float | None, typer.Option(help="server ping interval (s)")] = None,
        pong_timeout_s: Annotated[float | None, typer.Option(help="disconnect after this long without pong (s)")] = None,
        max_connection_s: Annotated[float | None, typer.Option(help="connection lifetime limit (s)")] = None,
        weight_limit: Annotated[int | None, typer.Option("--weight-limit", help="REQUEST_WEIGHT per minute")] = None,
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", help="any SimExchangeSettings field as NAME=VALUE, e.g. --set depth_fast_ms=50 (repeatable)"),
        ] = None,
    ) -> None:
        """Serve a simulated Binance spot exchange (REST + websockets on one port)."""
        import orjson
        from pydantic import ValidationError

        from infra.logs import configure_logging
        from sim_exchange.faults import FaultSpecError, parse_faults
        from sim_exchange.server import SimExchange, serve

        settings = settings_of(ctx)
        values = settings.sim.model_dump()
        for item in set_ or []:
            name, sep, value = item.partition("=")
            if not sep or name not in values:
                raise typer.BadParameter(f"--set {item!r}: expected NAME=VALUE with NAME in {sorted(values)}")
            values[name] = value
        overrides = {
            "symbols": symbols,
            "seed": seed,
            "port": port,
            "host": host,
            "events_per_s": events_per_s,
            "faults": faults,
            "ping_interval_s": ping_interval_s,
            "pong_timeout_s": pong_timeout_s,
            "max_connection_s": max_connection_s,
            "weight_limit_1m": weight_limit,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if account:
            values["accounts"] = ",".join([values["accounts"], *account])
        try:
            sim = type(settings.sim).model_validate(values)
            if sim.faults.strip():
                parse_faults(orjson.loads(sim.faults))
            exchange = SimExchange(sim)
        except (ValidationError, FaultSpecError, orjson.JSONDecodeError, ValueError) as exc:
            raise typer.BadParameter(str(exc)) from None
        configure_logging("sim-exchange", settings.log_level)
        serve(exchange)
