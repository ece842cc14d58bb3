"""Optional parts of the install: a command that needs one says which extra to install.

A cluster image installs ``tickpipe`` alone (services only). ``tickpipe[local]`` adds what runs the
stack on one machine (the chdb-backed warehouse, supervisord); ``tickpipe[research]`` adds the
plotting of the research reports. ``make up`` and ``make test`` install both.
"""

from __future__ import annotations

import importlib.util

import typer

EXTRAS = {
    "local": ("chdb", "supervisor"),
    "research": ("matplotlib", "pandas"),
}


def require(extra: str, command: str) -> None:
    """Exit 2 with what to install when a module of ``extra`` is missing."""
    missing = [name for name in EXTRAS[extra] if not installed(name)]
    if missing:
        typer.echo(f"error: `tickpipe {command}` needs {', '.join(missing)}: pip install 'tickpipe[{extra}]'",
                   err=True)
        raise typer.Exit(2)


def installed(module: str) -> bool:
    """True when ``module`` can be imported here (an absent or blocked one is not)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False
