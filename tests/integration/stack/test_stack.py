"""`tickpipe up` / `status` / `top` / `down` on a private TICKPIPE_HOME and free ports, against the real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition

from infra.health import probe
from infra.processes import alive, descendants, kill_all, wait_gone
from infra.settings import KafkaSettings
from infra.stack import StackPaths
from infra.supervision import Supervisor
from infra.topics import describe_topics
from tests.stack_harness import RunningStack, run_tickpipe, running_stack, stack_env, supervised_pids

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A running broker + warehouse stack shared by the module; brought down and checked by pid."""
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.mark.timeout(150)
def test_up_reports_both_services_healthy_and_where_they_run(stack: RunningStack) -> None:
    # Arrange
    record = stack.record

    # Act
    services = {s.name: s for s in record.services}

    # Assert
    assert set(services) == {"broker", "warehouse"}
    assert services["broker"].port == int(stack.env["TICKPIPE_BROKER__PORT"])
    assert services["warehouse"].port == int(stack.env["TICKPIPE_WAREHOUSE__PORT"])
    assert all(probe(s).ok for s in services.values())
    for name in ("broker", "warehouse"):
        assert any(name in line and "RUNNING" in line and "ok" in line for line in stack.up_output.splitlines())
    assert "tickpipe sql" in stack.up_output and "tickpipe down" in stack.up_output
    assert requests.get(f"{record.warehouse_url}/?query=SELECT%201", timeout=5).text.strip() == "1"
    topics = {t.name: t.partitions for t in describe_topics(KafkaSettings(bootstrap=record.bootstrap))}
    assert topics["md.trades"] == 4 and topics["signals"] == 4
    assert (stack.home / "logs" / "broker.log").stat().st_size > 0
    assert (stack.home / "logs" / "warehouse.log").exists()


@pytest.mark.timeout(60)
def test_up_again_on_a_running_stack_keeps_it_and_succeeds(stack: RunningStack) -> None:
    pids = {name: stack.pid(name) for name in ("broker", "warehouse")}

    result = stack.tickpipe("up")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "already supervised" in result.stdout
    assert {name: stack.pid(name) for name in pids} == pids


@pytest.mark.timeout(150)
def test_status_lists_services_topics_and_consumer_group_lag(stack: RunningStack) -> None:
    # Arrange: a consumer group that committed 2 of 5 messages on md.trades
    bootstrap = stack.record.bootstrap
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(5):
        producer.produce("md.trades", key=b"binance:BTCUSDT", value=b"%d" % i, partition=1)
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "status-test", "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition("md.trades", 1, 2)], asynchronous=False)
    consumer.close()

    # Act
    result = stack.tickpipe("status")

    # Assert
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ("broker", "warehouse"):
        assert any(name in line and "RUNNING" in line and "ok" in line for line in lines), result.stdout
    assert any("md.trades" in line and "0,5,0,0" in line for line in lines), result.stdout
    group_line = next(line for line in lines if "status-test" in line)
    assert group_line.split("│")[-2].strip() == "3"  # lag = end 5 - committed 2


@pytest.mark.timeout(60)
def test_status_json_is_machine_readable(stack: RunningStack) -> None:
    result = stack.tickpipe("status", "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["running"] and document["healthy"]
    services = {s["name"]: s for s in document["services"]}
    assert services["broker"]["pid"] == stack.pid("broker") and services["broker"]["healthy"]
    assert services["warehouse"]["port"] == int(stack.env["TICKPIPE_WAREHOUSE__PORT"])
    assert {t["name"]: t["partitions"] for t in document["topics"]}["md.trades"] == 4
    assert isinstance(document["consumer_groups"], list)


@pytest.mark.timeout(60)
def test_top_once_shows_topic_rates_and_lag_and_says_which_sources_are_missing(stack: RunningStack) -> None:
    # each source gets 10 s (default 2 s, what an operator wants): a loaded CI machine once needed more
    # for the topics' metadata and offsets, and the panel said "unavailable" instead of the table
    env = {**stack.env, "TICKPIPE_STACK__PROBE_TIMEOUT_S": "10"}
    result = run_tickpipe(env, stack.workdir, "top", "--once", "--interval", "0.5", timeout=50)

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "msg/s" in out and "md.trades" in out and "consumer lag" in out, out
    assert "feed health" in out and "not part of the stack" in out  # no feed in a broker+warehouse stack


@pytest.mark.timeout(150)
@pytest.mark.parametrize("service", ["warehouse", "broker"])
def test_kill_9_of_a_service_is_restarted_by_supervisord(stack: RunningStack, service: str) -> None:
    # Arrange
    old_pid = stack.pid(service)
    old_children = descendants(old_pid)

    # Act
    stack.kill9(service)

    # Assert: a new pid that answers its health probe; the old one's children are gone too
    new_pid = stack.wait_restarted(service, old_pid)
    assert new_pid != old_pid
    assert probe(stack.service(service)).ok
    assert not wait_gone(old_children | {old_pid}, 10.0)


@pytest.mark.timeout(150)
def test_down_leaves_no_process_behind(tmp_path: Path) -> None:
    # Arrange
    env = stack_env(tmp_path / "home", "broker,warehouse")
    up = run_tickpipe(env, tmp_path, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    pids = supervised_pids(tmp_path / "home")
    assert len(pids) >= 3  # supervisord, broker (the Kafka JVM itself), warehouse

    # Act
    try:
        down = run_tickpipe(env, tmp_path, "down")
    finally:
        leftover = wait_gone(pids, 5.0)
        kill_all(leftover)

    # Assert
    assert down.returncode == 0, down.stdout + down.stderr
    assert not leftover, f"still alive after down: {sorted(leftover)}"
    assert not any(alive(p) for p in pids)
    assert run_tickpipe(env, tmp_path, "status").returncode == 3


@pytest.mark.timeout(120)
def test_down_stops_a_frozen_supervisord_and_its_services_by_pid(tmp_path: Path) -> None:
    # Arrange: supervisord stops answering its socket (SIGSTOP)
    env = stack_env(tmp_path / "home", "broker,warehouse", TICKPIPE_STACK__STOP_TIMEOUT_S="15")
    up = run_tickpipe(env, tmp_path, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    pids = supervised_pids(tmp_path / "home")
    root = Supervisor(StackPaths(tmp_path / "home")).pid()
    os.kill(root, signal.SIGSTOP)

    # Act
    try:
        down = run_tickpipe(env, tmp_path, "down")
    finally:
        leftover = wait_gone(pids, 5.0)
        kill_all(leftover | ({root} if alive(root) else set()))

    # Assert
    assert down.returncode == 0, down.stdout + down.stderr
    assert "does not answer" in down.stdout
    assert not leftover, f"still alive after down: {sorted(leftover)}"


@pytest.mark.timeout(60)
def test_up_with_the_broker_port_taken_names_the_port_and_starts_nothing(tmp_path: Path) -> None:
    # Arrange: something else listens on the broker's port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        home = tmp_path / "home"
        env = stack_env(home, "broker,warehouse", TICKPIPE_BROKER__PORT=str(port))

        # Act
        result = run_tickpipe(env, tmp_path, "up")

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
    env = stack_env(home, "broker,warehouse", TICKPIPE_WAREHOUSE__DATA_DIR=str(blocker))

    # Act
    try:
        result = run_tickpipe(env, tmp_path, "up")
    finally:
        pids = supervised_pids(home)
        run_tickpipe(env, tmp_path, "down")
        kill_all(wait_gone(pids, 5.0))

    # Assert
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "service warehouse failed to start" in output, output
    assert f"last lines of {home / 'logs' / 'warehouse.log'}" in output
    assert not Supervisor(StackPaths(home)).running()
