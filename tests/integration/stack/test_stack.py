"""`tickpipe up` / `status` / `down` on a private TICKPIPE_HOME and free ports, against the real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from infra.broker import free_port
from infra.health import probe
from infra.processes import alive, descendants, kill_all, wait_gone
from infra.settings import KafkaSettings
from infra.stack import StackPaths
from infra.stack_control import StackRecord, record_path
from infra.supervision import Supervisor
from infra.topics import describe_topics

pytestmark = pytest.mark.integration

TICKPIPE = str(Path(sys.executable).with_name("tickpipe"))


def stack_env(home: Path, **ports: int) -> dict[str, str]:
    """The environment of a private stack: every TICKPIPE_* of the caller dropped, ports all free."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKPIPE_")}
    env.update(
        TICKPIPE_HOME=str(home),
        TICKPIPE_STACK__SERVICES="broker,warehouse",
        TICKPIPE_STACK__START_TIMEOUT_S="60",
        TICKPIPE_BROKER__PORT=str(ports.get("broker", free_port())),
        TICKPIPE_WAREHOUSE__PORT=str(free_port()),
    )
    return env


def tickpipe(env: dict[str, str], cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TICKPIPE, *args], env={**env, "COLUMNS": "200"}, cwd=cwd, capture_output=True, text=True, timeout=timeout,
        check=False,
    )


def supervised_pids(home: Path) -> set[int]:
    """supervisord, its programs and all their descendants."""
    supervisor = Supervisor(StackPaths(home))
    if not supervisor.running():
        return set()
    root = supervisor.pid()
    return {root} | descendants(root)


def program_pid(home: Path, name: str) -> int:
    return Supervisor(StackPaths(home)).info(name).pid


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """A running broker + warehouse stack; always brought down, and anything left killed by pid."""
    workdir = tmp_path_factory.mktemp("stack")
    home = workdir / "home"
    env = stack_env(home)
    result = tickpipe(env, workdir, "up")
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield env, workdir
    finally:
        left = supervised_pids(home)
        tickpipe(env, workdir, "down", timeout=90)
        kill_all(wait_gone(left, 5.0))


@pytest.mark.timeout(150)
def test_up_reports_both_services_healthy_and_where_they_run(stack: tuple[dict[str, str], Path]) -> None:
    # Arrange
    env, _ = stack
    home = Path(env["TICKPIPE_HOME"])
    record = StackRecord.load(record_path(StackPaths(home)))

    # Act
    services = {s.name: s for s in record.services}

    # Assert
    assert set(services) == {"broker", "warehouse"}
    assert services["broker"].port == int(env["TICKPIPE_BROKER__PORT"])
    assert services["warehouse"].port == int(env["TICKPIPE_WAREHOUSE__PORT"])
    assert all(probe(s).ok for s in services.values())
    assert requests.get(f"{record.warehouse_url}/?query=SELECT%201", timeout=5).text.strip() == "1"
    topics = {t.name: t.partitions for t in describe_topics(KafkaSettings(bootstrap=record.bootstrap))}
    assert topics["md.trades"] == 4 and topics["signals"] == 4
    assert (home / "logs" / "broker.log").stat().st_size > 0
    assert (home / "logs" / "warehouse.log").exists()


@pytest.mark.timeout(150)
def test_status_lists_services_topics_and_consumer_group_lag(stack: tuple[dict[str, str], Path]) -> None:
    # Arrange: a consumer group that committed 2 of 5 messages on md.trades
    from confluent_kafka import Consumer, Producer, TopicPartition

    env, workdir = stack
    bootstrap = f"127.0.0.1:{env['TICKPIPE_BROKER__PORT']}"
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(5):
        producer.produce("md.trades", key=b"binance:BTCUSDT", value=b"%d" % i, partition=1)
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "status-test", "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition("md.trades", 1, 2)], asynchronous=False)
    consumer.close()

    # Act
    result = tickpipe(env, workdir, "status")

    # Assert
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ("broker", "warehouse"):
        assert any(name in line and "RUNNING" in line and "ok" in line for line in lines), result.stdout
    assert any("md.trades" in line and "0,5,0,0" in line for line in lines), result.stdout
    group_line = next(line for line in lines if "status-test" in line)
    assert group_line.split("│")[-2].strip() == "3"  # lag = end 5 - committed 2


@pytest.mark.timeout(60)
def test_top_once_shows_topic_rates_and_lag_and_says_which_sources_are_missing(
    stack: tuple[dict[str, str], Path],
) -> None:
    env, workdir = stack

    result = tickpipe(env, workdir, "top", "--once", "--interval", "0.5", timeout=50)

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "msg/s" in out and "md.trades" in out and "consumer lag" in out
    assert "feed health" in out and "not part of the stack" in out  # no feed in a broker+warehouse stack


@pytest.mark.timeout(150)
@pytest.mark.parametrize("service", ["warehouse", "broker"])
def test_kill_9_of_a_service_is_restarted_by_supervisord(stack: tuple[dict[str, str], Path], service: str) -> None:
    # Arrange
    env, _ = stack
    home = Path(env["TICKPIPE_HOME"])
    record = StackRecord.load(record_path(StackPaths(home)))
    spec = next(s for s in record.services if s.name == service)
    old_pid = program_pid(home, service)
    old_children = descendants(old_pid)

    # Act
    os.kill(old_pid, signal.SIGKILL)

    # Assert: a new pid that answers its health probe; the old one's children (tansu) are gone too
    deadline = time.monotonic() + 60
    new_pid = old_pid
    while time.monotonic() < deadline:
        info = Supervisor(StackPaths(home)).info(service)
        new_pid = info.pid
        if info.state == "RUNNING" and new_pid != old_pid and probe(spec).ok:
            break
        time.sleep(0.3)
    assert new_pid != old_pid
    assert probe(spec).ok
    assert not wait_gone(old_children | {old_pid}, 10.0)


@pytest.mark.timeout(150)
def test_down_leaves_no_process_behind(tmp_path: Path) -> None:
    # Arrange
    home = tmp_path / "home"
    env = stack_env(home)
    up = tickpipe(env, tmp_path, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    pids = supervised_pids(home)
    assert len(pids) >= 4  # supervisord, tickpipe broker, tansu, warehouse

    # Act
    try:
        down = tickpipe(env, tmp_path, "down")
    finally:
        leftover = wait_gone(pids, 5.0)
        kill_all(leftover)

    # Assert
    assert down.returncode == 0, down.stdout + down.stderr
    assert not leftover, f"still alive after down: {sorted(leftover)}"
    assert not any(alive(p) for p in pids)
    assert tickpipe(env, tmp_path, "status").returncode == 3


@pytest.mark.timeout(60)
def test_up_with_the_broker_port_taken_names_the_port_and_starts_nothing(tmp_path: Path) -> None:
    # Arrange: something else listens on the broker's port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        home = tmp_path / "home"
        env = stack_env(home, broker=port)

        # Act
        result = tickpipe(env, tmp_path, "up")

    # Assert
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert f"port {port}" in output and "TICKPIPE_BROKER__PORT" in output, output
    assert not (home / "supervisord.pid").exists()
    assert not Supervisor(StackPaths(home)).running()


@pytest.mark.timeout(90)
def test_a_service_that_cannot_start_fails_up_with_its_name_and_log_tail(tmp_path: Path) -> None:
    # Arrange: the warehouse's data dir is a regular file, so it cannot open its store
    home = tmp_path / "home"
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    env = {**stack_env(home), "TICKPIPE_WAREHOUSE__DATA_DIR": str(blocker)}

    # Act
    try:
        result = tickpipe(env, tmp_path, "up")
    finally:
        pids = supervised_pids(home)
        tickpipe(env, tmp_path, "down")
        kill_all(wait_gone(pids, 5.0))

    # Assert
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "service warehouse failed to start" in output, output
    assert f"last lines of {home / 'logs' / 'warehouse.log'}" in output
    assert not Supervisor(StackPaths(home)).running()

