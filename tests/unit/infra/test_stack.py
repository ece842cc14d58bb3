"""The declared stack: service selection, start order, supervisord configuration, endpoint wiring."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest
from supervisor.datatypes import dict_of_key_value_pairs

from infra.settings import Settings, StackSettings, StreamsSettings, WarehouseSettings
from infra.stack import (
    SERVICES,
    StackConfigError,
    StackPaths,
    build_services,
    render_supervisord_conf,
    stack_environment,
    start_waves,
)


def everything(_: tuple[str, ...]) -> bool:
    return True


def settings(**kw: object) -> Settings:
    return Settings(**kw)


def test_every_declared_service_is_built_with_its_port_from_settings() -> None:
    s = settings()

    services = build_services(s, "/venv/bin/tickpipe", everything)

    assert [x.name for x in services] == [spec.name for spec in SERVICES]
    ports = {x.name: x.port for x in services}
    assert ports == {
        "broker": s.broker.port, "warehouse": s.warehouse.port, "sim-exchange": s.sim.port,
        "feed": s.feed.metrics_port, "feed-kraken": s.feed.kraken_metrics_port,
        "feed-coinbase": s.feed.coinbase_metrics_port, "streams": s.streams.web_port, "sink": s.sink.metrics_port,
        "executor": s.executor.metrics_port,
    }
    feed = next(x for x in services if x.name == "feed")
    assert feed.argv == ("/venv/bin/tickpipe", "feed", "binance", "--connections", str(s.feed.connections))
    kraken = next(x for x in services if x.name == "feed-kraken")
    assert kraken.argv == ("/venv/bin/tickpipe", "feed", "kraken", "--connections", str(s.feed.connections),
                           "--symbols", "BTC/USDT,ETH/USDT", "--metrics-port", str(s.feed.kraken_metrics_port))


def test_services_whose_command_has_not_landed_are_left_out() -> None:
    services = build_services(settings(), "tickpipe", lambda path: path in {("broker",), ("warehouse",)})

    assert [x.name for x in services] == ["broker", "warehouse"]


def test_unknown_service_name_is_refused_naming_it() -> None:
    s = settings(stack=StackSettings(services="broker,kafka-ui"))

    with pytest.raises(StackConfigError, match="kafka-ui"):
        build_services(s, "tickpipe", everything)


def test_a_service_without_its_dependency_is_refused() -> None:
    s = settings(stack=StackSettings(services="broker,sink"))

    with pytest.raises(StackConfigError, match="sink needs warehouse"):
        build_services(s, "tickpipe", everything)


def test_every_service_starts_in_a_later_wave_than_its_dependencies() -> None:
    services = build_services(settings(), "tickpipe", everything)

    waves = start_waves(services)

    wave_of = {s.name: i for i, wave in enumerate(waves) for s in wave}
    assert wave_of["broker"] == 0 and wave_of["warehouse"] == 0
    for service in services:
        assert all(wave_of[d] < wave_of[service.name] for d in service.depends_on)
    # every Kafka client starts after the broker (topics are created in between)
    assert all(wave_of[s.name] > wave_of["broker"] for s in services if s.uses_kafka)


def _parse(conf: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read_string(conf)
    return parser


def test_supervisord_conf_runs_each_service_with_restart_logs_and_wired_environment(tmp_path: Path) -> None:
    s = settings(home=tmp_path / "100%home")
    services = build_services(s, "/venv/bin/tickpipe", everything)
    paths = StackPaths(s.home)

    conf = _parse(render_supervisord_conf(services, paths, tmp_path, stack_environment(s)))

    assert conf.get("unix_http_server", "file").replace("%%", "%") == str(paths.socket)
    priorities = {}
    for service in services:
        section = f"program:{service.name}"
        assert conf.get(section, "autostart") == "false"
        assert conf.get(section, "autorestart") == "true"
        assert conf.get(section, "stopasgroup") == "true"
        assert conf.get(section, "stdout_logfile").replace("%%", "%") == str(paths.log_of(service.name))
        assert shlex.split(conf.get(section, "command")) == list(service.argv)
        env = dict_of_key_value_pairs(conf.get(section, "environment").replace("%%", "%"))
        assert env["TICKPIPE_KAFKA__BOOTSTRAP"] == f"127.0.0.1:{s.broker.port}"
        assert env["TICKPIPE_WAREHOUSE__URL"] == f"http://127.0.0.1:{s.warehouse.port}"
        assert env["TICKPIPE_HOME"] == str(s.home)
        priorities[service.name] = int(conf.get(section, "priority"))
    assert priorities["broker"] < priorities["feed"] and priorities["sim-exchange"] < priorities["executor"]


def test_endpoints_follow_the_local_ports_and_data_dirs_follow_home(tmp_path: Path) -> None:
    s = settings(
        home=tmp_path,
        broker={"port": 19092},
        sim={"port": 18765},
        streams=StreamsSettings(data_dir=tmp_path / "elsewhere"),
    )

    env = stack_environment(s)

    assert env["TICKPIPE_KAFKA__BOOTSTRAP"] == "127.0.0.1:19092"
    assert env["TICKPIPE_FEED__WS_URL"] == "ws://127.0.0.1:18765"
    assert env["TICKPIPE_EXECUTOR__REST_URL"] == "http://127.0.0.1:18765"
    assert env["TICKPIPE_WAREHOUSE__DATA_DIR"] == str(tmp_path / "warehouse")
    assert env["TICKPIPE_STREAMS__DATA_DIR"] == str(tmp_path / "elsewhere")


def test_explicit_warehouse_data_dir_is_kept(tmp_path: Path) -> None:
    s = settings(home=tmp_path / "h", warehouse=WarehouseSettings(data_dir=tmp_path / "store"))

    assert stack_environment(s)["TICKPIPE_WAREHOUSE__DATA_DIR"] == str(tmp_path / "store")


def test_a_deep_home_gets_a_short_socket_path_that_fits_af_unix() -> None:
    deep = Path("/tmp") / ("d" * 120)

    sock = StackPaths(deep).socket

    assert len(str(sock)) <= 100
    assert sock == StackPaths(deep).socket  # stable: status and down find the same socket
    assert StackPaths(Path("/tmp/short")).socket == Path("/tmp/short/supervisor.sock")
