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
