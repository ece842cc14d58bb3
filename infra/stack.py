"""The local stack, declared: which services run, how each starts, how its health is probed, in what order.

``SERVICES`` is the one list to extend when a new service lands (one entry each). Everything else is
derived from it: the supervisord configuration (:func:`render_supervisord_conf`), the start waves of
``tickpipe up`` (:func:`start_waves`), the ``tickpipe status`` table, the Kubernetes and compose files'
test. This module is pure: no process is started and no socket opened here.
"""

from __future__ import annotations

import hashlib
import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from infra.settings import ENV_PREFIX, Settings


class Probe(StrEnum):
    """How a service's health is checked."""

    KAFKA = "kafka"  # a metadata request answers
    HTTP = "http"  # GET <url> answers 200


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the local stack, before settings give it ports.

    ``command`` is the ``tickpipe`` sub-command path (used to check that the command exists);
    ``args`` builds its options from the settings; ``port`` reads the port its health answers on.
    """

    name: str
    command: tuple[str, ...]
    port: Callable[[Settings], int]
    port_setting: str
    probe: Probe
    health_path: str = "/health"
    args: Callable[[Settings], tuple[str, ...]] = lambda _s: ()
    depends_on: tuple[str, ...] = ()
    uses_kafka: bool = True


# Start order follows depends_on; topics are created once the broker is healthy and before any
# service with uses_kafka starts (the broker does not auto-create topics: each gets its own configs).
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "broker", ("broker",), lambda s: s.broker.port, "broker.port", Probe.KAFKA, uses_kafka=False,
    ),
    ServiceSpec(
        "warehouse", ("warehouse",), lambda s: s.warehouse.port, "warehouse.port", Probe.HTTP,
        health_path="/ping", uses_kafka=False,
    ),
    ServiceSpec(
        "sim-exchange", ("sim-exchange",), lambda s: s.sim.port, "sim.port", Probe.HTTP,
        args=lambda s: ("--port", str(s.sim.port)), uses_kafka=False,
    ),
    ServiceSpec(
        "feed", ("feed", "binance"), lambda s: s.feed.metrics_port, "feed.metrics_port", Probe.HTTP,
        args=lambda s: ("--connections", str(s.feed.connections)), depends_on=("broker", "sim-exchange"),
    ),
    ServiceSpec(
        "feed-kraken", ("feed", "kraken"), lambda s: s.feed.kraken_metrics_port, "feed.kraken_metrics_port",
        Probe.HTTP, depends_on=("broker", "sim-exchange"),
        args=lambda s: ("--connections", str(s.feed.connections), "--symbols", s.feed.kraken_symbols,
                        "--metrics-port", str(s.feed.kraken_metrics_port)),
    ),
    ServiceSpec(
        "feed-coinbase", ("feed", "coinbase"), lambda s: s.feed.coinbase_metrics_port, "feed.coinbase_metrics_port",
        Probe.HTTP, depends_on=("broker", "sim-exchange"),
        args=lambda s: ("--connections", str(s.feed.connections), "--symbols", s.feed.coinbase_symbols,
                        "--metrics-port", str(s.feed.coinbase_metrics_port)),
    ),
    ServiceSpec(
        "streams", ("streams", "worker"), lambda s: s.streams.web_port, "streams.web_port", Probe.HTTP,
        depends_on=("broker",),
    ),
    ServiceSpec(
        "sink", ("sink",), lambda s: s.sink.metrics_port, "sink.metrics_port", Probe.HTTP,
        depends_on=("broker", "warehouse"),
    ),
    ServiceSpec(
        "executor", ("executor",), lambda s: s.executor.metrics_port, "executor.metrics_port", Probe.HTTP,
        depends_on=("broker", "sim-exchange"),
    ),
)


@dataclass(frozen=True)
class Service:
    """One service with its settings applied: what supervisord runs and where its health answers."""

    name: str
    argv: tuple[str, ...]
    host: str
    port: int
    port_env: str
    probe: Probe
    health_path: str
    depends_on: tuple[str, ...]
    uses_kafka: bool

    @property
    def url(self) -> str:
        """Where a person points a client (Kafka bootstrap or the HTTP base URL)."""
        if self.probe is Probe.KAFKA:
            return f"{self.host}:{self.port}"
        return f"http://{self.host}:{self.port}"

    @property
    def health_url(self) -> str:
        """The URL probed for health (the bootstrap address for the broker)."""
        return self.url if self.probe is Probe.KAFKA else self.url + self.health_path


class StackConfigError(ValueError):
    """The requested stack cannot be built (unknown service, missing dependency)."""

    retriable = False


def env_name(dotted: str) -> str:
    """``"broker.port"`` -> ``"TICKPIPE_BROKER__PORT"``."""
    return ENV_PREFIX + "__".join(dotted.split(".")).upper()


def build_services(
    settings: Settings, tickpipe: str, available: Callable[[tuple[str, ...]], bool]
) -> tuple[Service, ...]:
    """Return the services to run, in declaration order.

    ``tickpipe`` is the console script's path; ``available`` says whether a sub-command exists (a
    service whose command has not landed yet is left out unless ``stack.services`` names it).
    """
    wanted = [n.strip() for n in settings.stack.services.split(",") if n.strip()]
    known = {spec.name for spec in SERVICES}
    unknown = sorted(set(wanted) - known)
    if unknown:
        raise StackConfigError(
            f"unknown service(s) in {env_name('stack.services')}: {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    specs = [s for s in SERVICES if s.name in wanted] if wanted else [s for s in SERVICES if available(s.command)]
    missing_cmd = [s.name for s in specs if not available(s.command)]
    if missing_cmd:
        raise StackConfigError(f"no `tickpipe` command for service(s): {', '.join(missing_cmd)}")
    names = {s.name for s in specs}
    for spec in specs:
        absent = [d for d in spec.depends_on if d not in names]
        if absent:
            raise StackConfigError(f"service {spec.name} needs {', '.join(absent)}, which is not in the stack")
    return tuple(
        Service(
            name=spec.name,
            argv=(tickpipe, *spec.command, *spec.args(settings)),
            host="127.0.0.1",
            port=spec.port(settings),
            port_env=env_name(spec.port_setting),
            probe=spec.probe,
            health_path=spec.health_path,
            depends_on=spec.depends_on,
            uses_kafka=spec.uses_kafka,
        )
        for spec in specs
    )


def start_waves(services: tuple[Service, ...]) -> list[tuple[Service, ...]]:
    """Group services into waves: every service starts after all of its dependencies' wave is healthy."""
    remaining = list(services)
    done: set[str] = set()
    waves: list[tuple[Service, ...]] = []
    while remaining:
        wave = tuple(s for s in remaining if set(s.depends_on) <= done)
        if not wave:
            raise StackConfigError(f"dependency cycle among {', '.join(s.name for s in remaining)}")
        waves.append(wave)
        done |= {s.name for s in wave}
        remaining = [s for s in remaining if s.name not in done]
    return waves


@dataclass(frozen=True)
class StackPaths:
    """Where the local stack keeps its files (all under ``settings.home``)."""

    home: Path

    @property
    def conf(self) -> Path:
        return self.home / "supervisord.conf"

    @property
    def pidfile(self) -> Path:
        return self.home / "supervisord.pid"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def socket(self) -> Path:
        # AF_UNIX paths are limited to 107 bytes; a deep checkout gets a stable path in the temp dir.
        path = self.home / "supervisor.sock"
        if len(str(path)) <= 100:
            return path
        digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"tickpipe-{digest}.sock"

    def log_of(self, service: str) -> Path:
        """The log file of one service."""
        return self.logs / f"{service}.log"


def stack_paths(settings: Settings) -> StackPaths:
    """Return the stack's file locations with ``home`` made absolute."""
    return StackPaths(settings.home.resolve())


def stack_environment(settings: Settings) -> dict[str, str]:
    """The environment every supervised service gets: endpoints wired to the local processes.

    Ports are the single truth under ``tickpipe up``: the Kafka bootstrap, the warehouse URL and the
    venue URLs are derived from the local broker, warehouse and simulated-exchange ports, so that
    moving one port (e.g. ``TICKPIPE_BROKER__PORT``) moves every client with it. Data directories
    follow ``TICKPIPE_HOME`` unless set explicitly.
    """
    home = settings.home.resolve()
    sim = f"{settings.sim.host}:{settings.sim.port}"
    env = {
        "home": str(home),
        "kafka.bootstrap": f"{settings.broker.host}:{settings.broker.port}",
        "warehouse.url": f"http://{settings.warehouse.host}:{settings.warehouse.port}",
        "feed.ws_url": f"ws://{sim}",
        "feed.rest_url": f"http://{sim}",
        "executor.rest_url": f"http://{sim}",
        "warehouse.data_dir": str(_under_home(settings.warehouse, "data_dir", home / "warehouse")),
        "broker.data_dir": str(_under_home(settings.broker, "data_dir", home / "kafka")),
        "streams.data_dir": str(_under_home(settings.streams, "data_dir", home / "streams")),
    }
    return {env_name(k): v for k, v in env.items()}


def _under_home(section: object, field: str, default: Path) -> Path:
    explicit = field in getattr(section, "model_fields_set", set())
    return Path(getattr(section, field)).resolve() if explicit else default


def wired_settings(settings: Settings) -> Settings:
    """Settings as the supervised services see them (see :func:`stack_environment`)."""
    env = stack_environment(settings)
    update = {
        "home": Path(env[env_name("home")]),
        "kafka": settings.kafka.model_copy(update={"bootstrap": env[env_name("kafka.bootstrap")]}),
        "warehouse": settings.warehouse.model_copy(
            update={"url": env[env_name("warehouse.url")], "data_dir": Path(env[env_name("warehouse.data_dir")])}
        ),
    }
    return settings.model_copy(update=update)


def _conf_value(text: str) -> str:
    # supervisord expands %(name)s in values: a literal percent sign is written %%.
    return text.replace("%", "%%")


def render_supervisord_conf(
    services: tuple[Service, ...], paths: StackPaths, workdir: Path, environment: dict[str, str]
) -> str:
    """Return the supervisord configuration running ``services`` (none autostarts: ``tickpipe up`` orders them)."""
    priority = {s.name: 100 * (i + 1) for i, wave in enumerate(start_waves(services)) for s in wave}
    env = ",".join(f'{k}="{_conf_value(v)}"' for k, v in sorted(environment.items()))
    lines = [
        "; generated by `tickpipe up` from infra/stack.py; edits are overwritten",
        "[unix_http_server]",
        f"file={_conf_value(str(paths.socket))}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_conf_value(str(paths.logs / 'supervisord.log'))}",
        "logfile_maxbytes=10MB",
        "logfile_backups=2",
        f"pidfile={_conf_value(str(paths.pidfile))}",
        f"childlogdir={_conf_value(str(paths.logs))}",
        f"directory={_conf_value(str(workdir))}",
        f"identifier=tickpipe:{_conf_value(str(paths.home))}",
        "nodaemon=false",
        "silent=true",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_conf_value(str(paths.socket))}",
    ]
    for service in services:
        log = _conf_value(str(paths.log_of(service.name)))
        lines += [
            "",
            f"[program:{service.name}]",
            f"command={_conf_value(shlex.join(service.argv))}",
            f"directory={_conf_value(str(workdir))}",
            f"priority={priority[service.name]}",
            "autostart=false",
            "autorestart=true",
            "startsecs=1",
            "startretries=3",
            "stopsignal=TERM",
            "stopwaitsecs=20",
            # The whole process group: a service's own children (the warehouse's chdb workers, ...) go too.
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={log}",
            "stdout_logfile_maxbytes=50MB",
            "stdout_logfile_backups=3",
            f"environment={env}",
        ]
    return "\n".join(lines) + "\n"
