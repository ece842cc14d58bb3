"""``tickpipe bench``: run every ``bench/*.py`` in turn, streaming its figures, and summarise."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from infra.processes import stop_process


@dataclass(frozen=True)
class BenchResult:
    """How one benchmark script ended."""

    script: Path
    returncode: int
    seconds: float


def bench_scripts(folder: Path, only: list[str] | None = None) -> list[Path]:
    """The benchmark scripts in ``folder`` (all, or those whose stem is in ``only``), sorted by name."""
    scripts = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    if only:
        unknown = sorted(set(only) - {p.stem for p in scripts})
        if unknown:
            raise ValueError(f"no bench script named {', '.join(unknown)} in {folder}")
        scripts = [p for p in scripts if p.stem in only]
    return scripts


def _interruptible() -> None:
    # A runner started in the background by a non-interactive shell (`cmd &`, nohup) ignores SIGINT,
    # and a child that starts with SIGINT ignored keeps ignoring it (Python then installs no
    # KeyboardInterrupt handler): the script could not be stopped in time to clean up.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_benchmarks(
    scripts: list[Path], console: Console, timeout_s: float, grace_s: float = 30.0
) -> list[BenchResult]:
    """Run each script (``python -m bench.<name>``), its output straight to the terminal; one never stops the rest.

    A script that overruns ``timeout_s`` gets SIGINT, and on Ctrl-C (which the script receives
    too) the runner waits: either way the script has ``grace_s`` to stop the brokers and
    warehouses it started before it is killed, so no service outlives the run.
    """
    results = []
    for i, script in enumerate(scripts, 1):
        console.rule(f"[{i}/{len(scripts)}] {script.name}")
        started = time.monotonic()
        # As a module from the repository root: run as a file, bench/ would shadow the packages
        # (bench/streams.py for `import streams`).
        proc = subprocess.Popen([sys.executable, "-m", f"{script.parent.name}.{script.stem}"], cwd=script.parent.parent,
                                preexec_fn=_interruptible)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            console.print(f"[red]{script.name} exceeded {timeout_s:.0f}s and was stopped[/red]")
            stop_process(proc, timeout_s=grace_s, sig=signal.SIGINT)
            rc = -1
        except KeyboardInterrupt:
            console.print(f"waiting up to {grace_s:.0f}s for {script.name} to stop what it started")
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
        results.append(BenchResult(script, rc, time.monotonic() - started))
    return results


def summary_table(results: list[BenchResult]) -> Table:
    """One row per script: outcome and wall time."""
    table = Table("benchmark", "result", "seconds", title="benchmarks")
    for r in results:
        outcome = "[green]ok[/green]" if r.returncode == 0 else f"[red]failed ({r.returncode})[/red]"
        table.add_row(r.script.name, outcome, f"{r.seconds:.1f}")
    return table
