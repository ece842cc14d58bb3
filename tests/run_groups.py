"""Run the suite as independent groups in parallel pytest processes (`make test`).

Most integration tests wait on brokers, sockets and timers rather than on a core, so two groups
side by side finish well before one process running them in turn (CI: 2 cores, a 20 minute budget).
Every fixture starts private processes on free ports, so the groups share nothing. Each line of
output carries its group's name; the exit code is the worst of the groups', and a group that
collects no test fails the run (pytest's exit code 5).

    python tests/run_groups.py [pytest args...]
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Two groups of about equal length (from --durations of whole runs): the drills and whole-stack
# tests with the archive's, the backtest's and the unit tests; the executor, feeds, streams and
# simulator tests. Clean runs, session 9: stack 15:03, components 16:52 with the backtest (~65 s).
GROUPS = {
    "stack": [
        "tests/faults", "tests/e2e", "tests/integration/stack", "tests/unit", "tests/integration/sinks",
        "tests/integration/warehouse", "tests/integration/schemas", "tests/integration/backtest",
    ],
    "components": [
        "tests/integration/executor", "tests/integration/producers", "tests/integration/streams",
        "tests/integration/sim_exchange",
    ],
}


# What a failed group's output is replayed from at the end: the groups' lines interleave, so a CI
# log cut to its last lines would otherwise show only the group that finished last.
_REPLAY_ERRORS = 60
_errors: dict[str, list[str]] = defaultdict(list)
_summary: dict[str, list[str]] = defaultdict(list)


def _pump(name: str, proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    in_summary = False
    for line in proc.stdout:
        sys.stdout.write(f"[{name}] {line}")
        sys.stdout.flush()
        if "short test summary info" in line:
            in_summary = True
        if in_summary and not line.startswith("SKIPPED"):  # -rs lists every skip: keep the failures
            _summary[name].append(line)
        elif line.startswith("E ") and len(_errors[name]) < _REPLAY_ERRORS:
            _errors[name].append(line)


def main(args: list[str]) -> int:
    tests = ROOT / "tests"
    folders = [p for p in (*tests.iterdir(), *(tests / "integration").iterdir())
               if p.is_dir() and p.name not in ("__pycache__", "fixtures", "integration")]
    grouped = {path for paths in GROUPS.values() for path in paths}
    missing = sorted(str(p.relative_to(ROOT)) for p in folders if str(p.relative_to(ROOT)) not in grouped)
    if missing:  # a new test folder must join a group, or its tests would silently not run
        print(f"run_groups: test folders in no group: {', '.join(missing)}", file=sys.stderr)
        return 1
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, *paths],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        for name, paths in GROUPS.items()
    }
    pumps = [threading.Thread(target=_pump, args=(name, proc)) for name, proc in procs.items()]
    for pump in pumps:
        pump.start()
    codes = {name: proc.wait() for name, proc in procs.items()}
    for pump in pumps:
        pump.join()
    for name, code in codes.items():
        if code not in (0, 5):
            print(f"run_groups: {name} failed; its assertion lines and summary again:")
            for line in (*_errors[name], *_summary[name]):
                sys.stdout.write(f"[{name}] {line}")
    for name, code in codes.items():
        verdict = "passed" if code == 0 else "collected no tests" if code == 5 else f"failed (exit {code})"
        print(f"run_groups: {name}: {verdict}")
    return 1 if any(c == 5 for c in codes.values()) else max(codes.values())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
