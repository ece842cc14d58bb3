"""Session fixtures: real local components on free loopback ports, stopped by pid at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from infra.broker import free_port, private_broker
from infra.settings import KafkaSettings
from infra.topics import create_topics
from sim_exchange.process import SimExchangeProcess, start_sim_exchange
from tests.docker_backend import clickhouse_container, docker_engine_problem, kafka_container
from warehouse.process import WarehouseProcess

# Machines here are shared and noisy: a property test fails on a wrong answer, never on a slow one.
settings.register_profile("tickpipe", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("tickpipe")

# --- backends: the same integration tests against local processes and, with Docker, containers -----
BACKENDS = ("local", "docker")
# Fixtures that drive a local process (SIGSTOP, restart, ...): their tests have no docker variant.
LOCAL_ONLY_FIXTURES = frozenset({"warehouse_process"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend", choices=(*BACKENDS, "all"), default="all",
        help="integration backend: local processes, Docker containers (testcontainers), or both (default)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    chosen = config.getoption("--backend")
    keep, drop = [], []
    for item in items:
        backend = getattr(getattr(item, "callspec", None), "params", {}).get("backend")
        if backend is not None and chosen != "all" and backend != chosen:
            drop.append(item)
            continue
        if backend == "docker" and (
            item.get_closest_marker("local_backend") or LOCAL_ONLY_FIXTURES & set(item.fixturenames)
        ):
            item.add_marker(pytest.mark.skip(reason="exercises the local component only (local_backend)"))
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", params=[pytest.param(b, marks=getattr(pytest.mark, b)) for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> str:
    """Which backend the session's Kafka and ClickHouse fixtures use; ``docker`` skips without an engine."""
    if request.param == "docker" and (problem := docker_engine_problem()):
        pytest.skip(f"docker backend: no Docker engine answers ({problem})")
    return request.param


@pytest.fixture(scope="session")
def docker_kafka_bootstrap() -> Iterator[str]:
    """Apache Kafka (KRaft) in a container."""
    with kafka_container() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def docker_clickhouse_url() -> Iterator[str]:
    """A ClickHouse server in a container (HTTP interface)."""
    with clickhouse_container() as url:
        yield url


@pytest.fixture(scope="session")
def kafka_settings(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaSettings]:
    """A real broker with every tickpipe topic created (4 partitions).

    ``local``: Apache Kafka (KRaft, from the Maven-resolved jars) on free loopback ports;
    ``docker``: Apache Kafka through testcontainers.
    """
    if backend == "docker":
        settings = KafkaSettings(bootstrap=request.getfixturevalue("docker_kafka_bootstrap"), partitions=4)
        create_topics(settings)
        yield settings
        return
    with private_broker(tmp_path_factory.mktemp("broker") / "kafka") as (settings, _):
        yield settings


@pytest.fixture(scope="session")
def warehouse_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarehouseProcess]:
    """A real ``tickpipe warehouse`` (chdb store in a tmp dir) on a free port; stopped by pid at the end.

    The object also offers ``pause()``/``resume()`` (SIGSTOP/SIGCONT) and ``restart()`` on the same
    data dir for fault tests; whoever pauses or stops it must resume/start it again before returning.
    """
    base = tmp_path_factory.mktemp("warehouse")
    proc = WarehouseProcess(free_port(), base / "data", log_path=base / "warehouse.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def warehouse_url(backend: str, request: pytest.FixtureRequest) -> str:
    """Base URL of the session's real ClickHouse HTTP interface.

    ``local``: the warehouse process (``http://127.0.0.1:PORT``); ``docker``: a ClickHouse server container.
    """
    if backend == "docker":
        return request.getfixturevalue("docker_clickhouse_url")
    return request.getfixturevalue("warehouse_process").url


# --- simulated exchange (sim_exchange) ------------------------------------------------------

@pytest.fixture
def sim_exchange_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SimExchangeProcess]]:
    """Start simulators with ``factory(seed=7, events_per_s=500, symbols="BTCUSDT,ETHUSDT", ...)``.

    Keyword arguments are ``SimExchangeSettings`` fields (plus ``accounts=["KEY:SECRET"]``); each
    call starts a real process on a free port; all of them are stopped by pid at teardown.
    """
    started: list[SimExchangeProcess] = []

    def factory(**options: object) -> SimExchangeProcess:
        options.setdefault("seed", 7)
        log_path = tmp_path_factory.mktemp("sim_exchange") / "sim.log"
        sim = start_sim_exchange(log_path=log_path, **options)  # type: ignore[arg-type]
        started.append(sim)
        return sim

    try:
        yield factory
    finally:
        for sim in started:
            sim.stop()


@pytest.fixture(scope="session")
def sim_exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimExchangeProcess]:
    """A session-wide simulator: BTCUSDT,ETHUSDT, seed 7, 500 book events/s, default account.

    Shared: tests that set faults must clear them (``sim_exchange.clear_faults()``) when done.
    """
    log_path = tmp_path_factory.mktemp("sim_exchange_session") / "sim.log"
    sim = start_sim_exchange(log_path=log_path, seed=7, symbols="BTCUSDT,ETHUSDT", events_per_s=500)
    try:
        yield sim
    finally:
        sim.stop()
