"""`tickpipe down` then `tickpipe up` (what `make down` / `make up` run) keeps the broker's data.

Topics, their records, every consumer group's committed offsets and Faust's changelogs survive, so the
second life goes on where the first stopped: the streams worker restores its tables instead of
starting over, and the sink archives no Kafka offset twice. Counted from the broker and the archive,
not from the services' own metrics.
"""

from __future__ import annotations

import time
from pathlib import Path

import clickhouse_connect
import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from infra.topics import end_offsets
from tests.stack_harness import running_stack

pytestmark = pytest.mark.integration
SERVICES = "broker,warehouse,sim-exchange,feed,streams,sink"
CHECKED = ("md.trades", "md.book", "features.flow", "features.book", "bars.1s")


def _committed(admin: AdminClient, group: str) -> dict[tuple[str, int], int]:
    future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=10)[group]
    return {(tp.topic, tp.partition): tp.offset for tp in future.result().topic_partitions if tp.offset >= 0}


def _ends(bootstrap: str, admin: AdminClient) -> dict[tuple[str, int], int]:
    topics = admin.list_topics(timeout=10).topics
    partitions = [TopicPartition(t, p) for t in topics if not t.startswith("__") for p in topics[t].partitions]
    return {key: end for key, (_, end) in end_offsets(bootstrap, partitions).items()}


def _tails(home: Path, *names: str, lines: int = 25, keys: tuple[str, ...] = ("",)) -> str:
    # the services' own account (their last lines holding one of ``keys``), for a failure on a machine
    # that is gone afterwards
    return "".join(f"\n--- {name}.log:\n" + "\n".join([
        line[:300] for line in (home / "logs" / f"{name}.log").read_text(errors="replace").splitlines()
        if any(k in line for k in keys)][-lines:]) for name in names if (home / "logs" / f"{name}.log").exists())


LIFECYCLE_KEYS = ("ommit", "ssign", "evok", "topping", "hutdown", "Restore", "rror", "arning")


def _wait(what: str, check, timeout_s: float, home: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout_s:.0f} s{_tails(home, 'streams', 'sink', lines=15)}")
        time.sleep(0.5)


@pytest.mark.timeout(300)
def test_down_then_up_keeps_topics_offsets_and_changelogs_and_archives_nothing_twice(tmp_path: Path) -> None:
    with running_stack(tmp_path, SERVICES) as stack:
        bootstrap = stack.record.bootstrap
        host, port = stack.record.warehouse_url.removeprefix("http://").split(":")
        sql = clickhouse_connect.get_client(host=host, port=int(port), database="tickpipe", compress=False)
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        # Arrange: a first life with flow features archived and changelogs written
        _wait("50 flow features archived", lambda: sql.query("SELECT count() FROM features_flow").result_rows[0][0] >= 50,
              120, stack.home)
        down = stack.tickpipe("down")
        assert down.returncode == 0, down.stdout + down.stderr
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})  # the old one's broker is gone

        # Act: the second life
        log_before = (stack.home / "logs" / "streams.log").stat().st_size
        up = stack.tickpipe("up")
        assert up.returncode == 0, up.stdout + up.stderr
        ends_after_up = _ends(bootstrap, admin)
        streams_after_up = _committed(admin, "tickpipe-streams")
        sink_after_up = _committed(admin, "tickpipe-sink")
        time.sleep(15)  # the second life works on
        sql = clickhouse_connect.get_client(host=host, port=int(port), database="tickpipe", compress=False)
        ends_later = _ends(bootstrap, admin)

        # Assert: the first life's records, offsets and changelogs are there at the start of the second
        changelogs = [t for t, _ in ends_after_up if t.endswith("-changelog")]
        assert changelogs and sum(ends_after_up[k] for k in ends_after_up if k[0] in changelogs) > 0
        assert sum(ends_after_up[k] for k in ends_after_up if k[0] == "md.trades") > 0
        assert sum(v for (t, _), v in streams_after_up.items() if t == "md.trades") > 0, (
            f"streams committed {streams_after_up}{_tails(stack.home, 'streams', lines=60, keys=LIFECYCLE_KEYS)}")
        assert sum(v for (t, _), v in sink_after_up.items() if t == "md.trades") > 0, (
            f"sink committed {sink_after_up}{_tails(stack.home, 'sink', lines=60, keys=LIFECYCLE_KEYS)}")
        with (stack.home / "logs" / "streams.log").open() as log:
            log.seek(log_before)
            assert "Restore complete" in log.read()
        # ... and the second life went on from there
        assert sum(ends_later[k] for k in ends_later if k[0] == "md.trades") > sum(
            ends_after_up[k] for k in ends_after_up if k[0] == "md.trades")
        for topic in CHECKED:
            table = topic.replace(".", "_")
            rows, offsets = sql.query(
                f"SELECT count(), uniqExact(_topic_id, _partition, _offset) FROM {table}").result_rows[0]
            assert rows == offsets > 0, (topic, rows, offsets)
        # every input trade got exactly one flow feature: streams did not start over from offset 0
        rows, inputs = sql.query(
            "SELECT count(), uniqExact(symbol, last_trade_id, ts_recv) FROM features_flow").result_rows[0]
        assert rows == inputs, (rows, inputs)
