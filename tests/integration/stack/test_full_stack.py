"""`tickpipe up` with every service that exists: all healthy, data flowing through the pipeline's topics."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from infra.health import probe
from infra.settings import KafkaSettings
from infra.stack import SERVICES
from infra.stack_control import command_exists
from infra.topics import describe_topics
from tests.stack_harness import running_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ALL = [s.name for s in SERVICES if command_exists(s.command)]
# Topics that carry data within seconds of the feed connecting (signals and orders depend on the model).
FLOWING = ("md.trades", "md.book", "md.bbo", "md.health", "features.book", "features.flow", "bars.1s")


@pytest.mark.timeout(300)
@pytest.mark.skipif(len(ALL) < len(SERVICES), reason=f"not every service command exists yet: {ALL}")
def test_every_service_runs_healthy_and_data_reaches_every_market_and_feature_topic(tmp_path: Path) -> None:
    # Arrange / Act
    with running_stack(tmp_path, ",".join(ALL)) as stack:
        kafka = KafkaSettings(bootstrap=stack.record.bootstrap)
        deadline = time.monotonic() + 150  # streams workers start slowly on a loaded 2-core machine
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            counts = {t.name: t.messages for t in describe_topics(kafka)}
            if all(counts.get(name, 0) > 0 for name in FLOWING):
                break
            time.sleep(2)
        health = {s.name: probe(s).ok for s in stack.record.services}
        status = stack.tickpipe("status")

    # Assert
    assert health == {name: True for name in ALL}
    assert {name: counts.get(name, 0) > 0 for name in FLOWING} == {name: True for name in FLOWING}, counts
    assert status.returncode == 0, status.stdout + status.stderr
    assert "tickpipe-sink" in status.stdout  # the sink's consumer group reports its lag
