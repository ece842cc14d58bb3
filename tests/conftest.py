"""Session fixtures: real local components on free loopback ports, stopped by pid at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.broker import free_port, start_broker
from infra.settings import KafkaSettings
from infra.topics import create_topics
from infra.warehouse.process import WarehouseProcess


@pytest.fixture(scope="session")
def kafka_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaSettings]:
    """A real tansu broker on a free port with every tickpipe topic created (4 partitions)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    proc = start_broker("127.0.0.1", port, log_path=log_path)
    settings = KafkaSettings(bootstrap=f"127.0.0.1:{port}", partitions=4)
    try:
        create_topics(settings)
        yield settings
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            proc.kill()
            proc.wait()


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
def warehouse_url(warehouse_process: WarehouseProcess) -> str:
    """Base URL (``http://127.0.0.1:PORT``) of the session's real warehouse (ClickHouse HTTP interface)."""
    return warehouse_process.url


# --- simulated exchange (infra/sim_exchange) ------------------------------------------------------
from collections.abc import Callable  # noqa: E402

from infra.sim_exchange.process import SimExchangeProcess, start_sim_exchange  # noqa: E402


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
