"""The ``tickpipe`` command line: one entry point, every service and tool as a sub-command.

Settings are loaded once here (``infra.settings.load_settings``) and handed to the commands through
``ctx.obj``. Each component registers its own commands with ``register(app)`` in its ``cli`` module,
whose heavy imports happen inside the command bodies so that ``tickpipe --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

from infra.extras import installed
from infra.settings import Settings, load_settings

app = typer.Typer(
    name="tickpipe",
    help="Crypto market-data and trading pipeline on Kafka.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES = (
    "infra.stack_cli",
    "producers.cli",
    "streams.cli",
    "sinks.cli",
    "executor.cli",
    "backtest.cli",
)
# the local stack's stand-ins (simulated venue, embedded warehouse): a service image leaves them out
LOCAL_COMMAND_MODULES = ("sim_exchange.cli", "warehouse.cli")


@app.callback()
def _root(ctx: typer.Context) -> None:
    ctx.obj = load_settings()


def settings_of(ctx: typer.Context) -> Settings:
    """Return the settings loaded by the root command."""
    return ctx.find_root().obj


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)
for _module in LOCAL_COMMAND_MODULES:
    if installed(_module.split(".")[0]):
        importlib.import_module(_module).register(app)


def main() -> None:
    """Console-script entry point."""
    app()
