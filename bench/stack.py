"""Local stack timings: `tickpipe up` until every service is healthy, until data is in every market and
feature topic, and `tickpipe down` until no process is left. Private TICKPIPE_HOME, free ports.

    .venv/bin/python -m bench.stack [--runs 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from infra.broker import free_port
from infra.settings import KafkaSettings, environ_without_settings
from infra.stack import SERVICES, StackPaths, env_name
from infra.stack_control import StackRecord, command_exists, record_path
from infra.topics import describe_topics

FLOWING = ("md.trades", "md.book", "md.bbo", "features.book", "features.flow", "bars.1s")
TICKPIPE = str(Path(sys.executable).with_name("tickpipe"))


def one_run(workdir: Path, services: list[str]) -> tuple[float, float, float]:
    home = workdir / "home"
    env = environ_without_settings()
    env.update(TICKPIPE_HOME=str(home), TICKPIPE_STACK__SERVICES=",".join(services))
    for spec in SERVICES:
        if spec.name in services:
            env[env_name(spec.port_setting)] = str(free_port())
    if "broker" in services:
        env[env_name("broker.controller_port")] = str(free_port())
    started = time.monotonic()
    up = subprocess.run([TICKPIPE, "up"], env=env, cwd=workdir, capture_output=True, text=True, check=False)
    healthy = time.monotonic() - started
    try:
        if up.returncode != 0:
            raise SystemExit(f"tickpipe up failed:\n{up.stdout}\n{up.stderr}")
        kafka = KafkaSettings(bootstrap=StackRecord.load(record_path(StackPaths(home))).bootstrap)
        while time.monotonic() - started < 300:
            counts = {t.name: t.messages for t in describe_topics(kafka)}
            if all(counts.get(t, 0) > 0 for t in FLOWING):
                break
            time.sleep(0.5)
        flowing = time.monotonic() - started
    finally:
        stop_start = time.monotonic()
        subprocess.run([TICKPIPE, "down"], env=env, cwd=workdir, capture_output=True, check=False)
        stopped = time.monotonic() - stop_start
    return healthy, flowing, stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    services = [s.name for s in SERVICES if command_exists(s.command)]
    print(f"services: {', '.join(services)}; {args.runs} run(s)")
    rows = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
            healthy, flowing, stopped = one_run(Path(tmp), services)
        rows.append((healthy, flowing, stopped))
        print(f"run {i + 1}: up->all healthy {healthy:5.1f} s | up->data in {len(FLOWING)} topics "
              f"{flowing:5.1f} s | down->no process left {stopped:5.1f} s", flush=True)
    best = [min(r[i] for r in rows) for i in range(3)]
    print(f"best: healthy {best[0]:.1f} s, flowing {best[1]:.1f} s, down {best[2]:.1f} s")


if __name__ == "__main__":
    main()
