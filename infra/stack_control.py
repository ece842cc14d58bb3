"""``tickpipe up`` / ``down`` / ``status``: run the declared stack under supervisord, in order, verified.

``up`` writes the supervisord configuration, starts the daemon (no program autostarts), then starts
the services wave by wave (:func:`infra.stack.start_waves`), waiting for each wave to be healthy;
the topics are created as soon as the broker answers and before any Kafka client starts. ``down``
stops the programs in reverse order, shuts supervisord down and checks by pid that nothing is left.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from infra.broker import port_in_use, wait_for_coordinator
from infra.health import Health, probe
from infra.processes import alive, descendants, kill_all, resume_all, terminate_all, wait_gone
from infra.settings import Settings
from infra.stack import (
    Probe,
    Service,
    StackPaths,
    build_services,
    render_supervisord_conf,
    stack_environment,
    stack_paths,
    start_waves,
    wired_settings,
)
from infra.supervision import ProcessInfo, Supervisor
from infra.topics import create_topics

LOG_TAIL_LINES = 25
STOPPED_STATES = frozenset({"STOPPED", "EXITED", "FATAL"})
CRASH_LOOP_STARTS = 2  # a service seen with a third pid while starting is failing, not booting


class StackError(RuntimeError):
    """The stack could not be brought up or down; the message says which service and why."""

    retriable = False


def tickpipe_executable() -> str:
    """The ``tickpipe`` console script of the running interpreter's environment."""
    script = Path(sys.executable).with_name("tickpipe")
    if not script.exists():
        raise StackError(f"no tickpipe console script next to {sys.executable}; run `make install`")
    return str(script)


def command_exists(path: tuple[str, ...]) -> bool:
    """Return True when ``tickpipe <path...>`` is a registered command (services land one by one)."""
    import typer.main

    from infra.cli import app

    command = typer.main.get_command(app)
    for word in path:
        children = getattr(command, "commands", None)
        if children is None:
            return True  # a plain command: the remaining words are its arguments (`feed binance`)
        if word not in children:
            return False
        command = children[word]
    return True


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file (empty when there is none yet)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            return "\n".join(fh.read().decode(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


@dataclass(frozen=True)
class StackRecord:
    """What ``up`` started, saved next to the supervisord config for ``status``, ``down`` and ``top``."""

    services: tuple[Service, ...]
    bootstrap: str
    warehouse_url: str

    def save(self, path: Path) -> None:
        """Write as JSON."""
        data = {
            "services": [asdict(s) for s in self.services],
            "bootstrap": self.bootstrap,
            "warehouse_url": self.warehouse_url,
        }
        path.write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, path: Path) -> StackRecord:
        """Read what :meth:`save` wrote."""
        data = json.loads(path.read_text())
        services = tuple(
            Service(**{**s, "argv": tuple(s["argv"]), "depends_on": tuple(s["depends_on"]), "probe": Probe(s["probe"])})
            for s in data["services"]
        )
        return cls(services, data["bootstrap"], data["warehouse_url"])


def record_path(paths: StackPaths) -> Path:
    """Where :class:`StackRecord` lives."""
    return paths.home / "stack.json"


class StackController:
    """Bring the local stack up, down, and report on it."""

    def __init__(self, settings: Settings, console: Console | None = None) -> None:
        self.settings = settings
        self.wired = wired_settings(settings)
        self.paths = stack_paths(settings)
        self.supervisor = Supervisor(self.paths)
        self.console = console or Console()

    # -- up -------------------------------------------------------------------------------------

    def plan(self) -> StackRecord:
        """The services ``up`` would run with the current settings."""
        services = build_services(self.settings, tickpipe_executable(), command_exists)
        return StackRecord(services, self.wired.kafka.bootstrap, self.wired.warehouse.url)

    def up(self) -> StackRecord:
        """Start every service in order and return once all are healthy; raise :class:`StackError` otherwise."""
        record = self.plan()
        conf = render_supervisord_conf(record.services, self.paths, Path.cwd(), stack_environment(self.settings))
        if self.supervisor.running():
            if self.paths.conf.read_text() != conf:
                raise StackError(
                    f"a stack with another configuration already runs from {self.paths.home} "
                    f"(supervisord pid {self.supervisor.pid()}); run `tickpipe down` first"
                )
            self.console.print(f"stack already supervised from {self.paths.home}; starting what is not running")
        else:
            self._check_ports(record.services)
            self.paths.logs.mkdir(parents=True, exist_ok=True)
            self.paths.conf.write_text(conf)
            pid = self.supervisor.start_daemon()
            self.console.print(f"supervisord started (pid {pid}), config {self.paths.conf}")
        record.save(record_path(self.paths))
        try:
            self._start_in_order(record)
        except (StackError, KeyboardInterrupt):
            self.console.print("[red]start failed or interrupted[/red]; stopping what was started "
                               f"(logs stay in {self.paths.logs})")
            self.down(quiet=True)
            raise
        return record

    def _check_ports(self, services: tuple[Service, ...]) -> None:
        for service in services:
            if port_in_use(service.host, service.port):
                raise StackError(
                    f"port {service.port} on {service.host} (service {service.name}) is already in use; "
                    f"stop what holds it or choose another port with {service.port_env}"
                )

    def _start_in_order(self, record: StackRecord) -> None:
        topics_ready = False
        for wave in start_waves(record.services):
            if not topics_ready and any(s.uses_kafka for s in wave):
                self._create_topics()
                topics_ready = True
            self.console.print(f"starting {', '.join(s.name for s in wave)}")
            for service in wave:
                self.supervisor.start(service.name)
            self._wait_healthy(wave)
        if not topics_ready and any(s.probe is Probe.KAFKA for s in record.services):
            self._create_topics()

    def _create_topics(self) -> None:
        wait_for_coordinator(self.wired.kafka.bootstrap, self.settings.stack.start_timeout_s)
        created = create_topics(self.wired.kafka)
        self.console.print(f"topics: created {len(created)} ({self.wired.kafka.partitions} partitions each)"
                           if created else "topics: all exist")

    def _wait_healthy(self, wave: tuple[Service, ...]) -> None:
        timeout = self.settings.stack.start_timeout_s
        deadline = time.monotonic() + timeout
        pending = {s.name: s for s in wave}
        started = time.monotonic()
        last: dict[str, str] = {}
        pids: dict[str, set[int]] = {name: set() for name in pending}
        with self.console.status("") as status:
            while pending:
                for name, service in list(pending.items()):
                    info = self.supervisor.info(name)
                    if info.state == "FATAL":
                        self._fail(service, f"supervisord gave up starting it ({info.description})")
                    if info.pid:
                        pids[name].add(info.pid)
                    if len(pids[name]) > CRASH_LOOP_STARTS:
                        self._fail(service, f"it exited {len(pids[name]) - 1} times while starting (crash loop)")
                    health = probe(service, self.settings.stack.probe_timeout_s) if info.state == "RUNNING" else None
                    if health and health.ok:
                        del pending[name]
                        self.console.print(
                            f"[green]healthy[/green] {name:<13} pid {info.pid:<7} {service.url} "
                            f"({time.monotonic() - started:.1f}s)"
                        )
                    else:
                        last[name] = f"{info.state}" + (f", {health.detail}" if health else "")
                if not pending:
                    break
                if time.monotonic() > deadline:
                    name = min(pending)
                    self._fail(pending[name], f"not healthy within {timeout:.0f}s (last: {last.get(name)})")
                status.update(
                    f"waiting {time.monotonic() - started:4.1f}s for "
                    + "; ".join(f"{n} ({last.get(n, '...')})" for n in sorted(pending))
                )
                time.sleep(0.25)

    def _fail(self, service: Service, why: str) -> None:
        log = self.paths.log_of(service.name)
        tail = log_tail(log)
        raise StackError(
            f"service {service.name} failed to start: {why}\n"
            f"--- last lines of {log} ---\n{tail or '(log is empty)'}"
        )

    # -- down -----------------------------------------------------------------------------------

    def down(self, quiet: bool = False) -> set[int]:
        """Stop every service and supervisord; return the pids that were stopped (verified gone)."""
        if not self.supervisor.running():
            return self._stop_unresponsive(quiet)
        root = self.supervisor.pid()
        pids = {root} | descendants(root) | {p.pid for p in self.supervisor.all_info() if p.pid}
        with self.console.status("stopping services (reverse start order)") as status:
            for wave in self._stop_waves():
                status.update(f"stopping {', '.join(wave)}")
                self._stop_wave(wave)
            self.supervisor.stop_all(self.settings.stack.stop_timeout_s)  # anything not in the record
            pids |= descendants(root)
            self.supervisor.shutdown()
            left = wait_gone(pids, self.settings.stack.stop_timeout_s)
            if left:
                self.console.print(f"[yellow]still alive after {self.settings.stack.stop_timeout_s:.0f}s, "
                                   f"killing[/yellow]: {sorted(left)}")
                kill_all(left)
                left = wait_gone(left, 5.0)
        if left:
            raise StackError(f"processes still alive after SIGKILL: {sorted(left)}")
        if not quiet:
            self.console.print(f"stopped {len(pids)} process(es) (pids {', '.join(map(str, sorted(pids)))}); none left")
        return pids

    def _stop_waves(self) -> list[tuple[str, ...]]:
        # Reverse start order, one wave at a time: consumers flush and commit while the broker and
        # the warehouse still run (supervisord's stopAllProcesses does not wait between priorities).
        path = record_path(self.paths)
        if not path.exists():
            return []
        running = {p.name for p in self.supervisor.all_info()}
        waves = reversed(start_waves(StackRecord.load(path).services))
        return [names for wave in waves if (names := tuple(s.name for s in wave if s.name in running))]

    def _stop_wave(self, names: tuple[str, ...]) -> None:
        for name in names:
            self.supervisor.stop(name)
        deadline = time.monotonic() + self.settings.stack.stop_timeout_s
        while time.monotonic() < deadline:
            if all(self.supervisor.info(n).state in STOPPED_STATES for n in names):
                return
            time.sleep(0.2)

    def _stop_unresponsive(self, quiet: bool) -> set[int]:
        # A supervisord of this home that no longer answers its socket: stop it and its tree by pid.
        pid = self.supervisor.pidfile_pid()
        if not pid or not alive(pid) or str(self.paths.conf) not in _cmdline(pid):
            if not quiet:
                self.console.print(f"no stack runs from {self.paths.home}")
            return set()
        pids = {pid} | descendants(pid)
        self.console.print(f"[yellow]supervisord pid {pid} does not answer on {self.paths.socket}; "
                           f"stopping it and its {len(pids) - 1} process(es) by pid[/yellow]")
        terminate_all(pids)
        resume_all(pids)  # a frozen (SIGSTOPped) process only acts on SIGTERM once continued
        left = wait_gone(pids, self.settings.stack.stop_timeout_s)
        kill_all(left)
        if wait_gone(left, 5.0):
            raise StackError(f"processes still alive after SIGKILL: {sorted(left)}")
        return pids

    # -- status ---------------------------------------------------------------------------------

    def service_states(self) -> list[tuple[Service, ProcessInfo, Health]]:
        """Each recorded service with supervisord's view and a fresh health probe."""
        record = StackRecord.load(record_path(self.paths))
        infos = {p.name: p for p in self.supervisor.all_info()}
        return [
            (s, infos[s.name], probe(s, self.settings.stack.probe_timeout_s))
            for s in record.services
            if s.name in infos
        ]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def services_table(rows: list[tuple[Service, ProcessInfo, Health]], paths: StackPaths) -> Table:
    """The "what runs where" table."""
    table = Table("service", "state", "pid", "uptime", "health", "port", "URL", "log", title="services")
    # Short columns never wrap; URL and log path fold instead, so an 80-column terminal stays readable.
    for column in table.columns[:-2]:
        column.no_wrap = True
    for column in table.columns[-2:]:
        column.overflow = "fold"
    for service, info, health in rows:
        table.add_row(
            service.name,
            info.state,
            str(info.pid or "-"),
            _duration(info.uptime_s) if info.uptime_s else "-",
            "[green]ok[/green]" if health.ok else f"[red]down[/red] {health.detail}",
            str(service.port),
            service.url,
            _relative(paths.log_of(service.name)),
        )
    return table


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{sec:02d}s" if hours else f"{minutes}m{sec:02d}s"


EXAMPLE_QUERIES = (
    "SELECT symbol, count() AS trades, min(price), max(price) FROM md_trades GROUP BY symbol",
    "SELECT symbol, start, open, high, low, close, volume FROM bars_1m FINAL ORDER BY start DESC LIMIT 10",
    "SELECT model, side, count() AS signals, avg(strength) FROM signals GROUP BY model, side",
)


def example_commands(record: StackRecord, database: str) -> list[str]:
    """Commands worth trying once the stack runs."""
    names = {s.name for s in record.services}
    lines = ["tickpipe status", "tickpipe topics list"]
    if "warehouse" in names:
        lines += [f'tickpipe sql "{q}"' for q in EXAMPLE_QUERIES]
        lines.append(f"curl '{record.warehouse_url}/?database={database}&query=SHOW+TABLES'")
    lines.append("tickpipe down")
    return lines


def print_up_summary(console: Console, controller: StackController, record: StackRecord) -> None:
    """Print the services table and example commands after a successful ``up``."""
    console.print(services_table(controller.service_states(), controller.paths))
    console.print(f"Kafka bootstrap: {record.bootstrap}    warehouse: {record.warehouse_url}")
    console.print(
        f"supervisorctl: {Path(sys.executable).with_name('supervisorctl')} -c {controller.paths.conf} status",
        soft_wrap=True,
    )
    venv_bin = Path(sys.executable).parent
    console.print(f"try (after `. {_relative(venv_bin / 'activate')}`, which puts tickpipe on the PATH):", soft_wrap=True)
    for line in example_commands(record, controller.settings.warehouse.database):
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)

