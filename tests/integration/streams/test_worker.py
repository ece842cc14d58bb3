"""The streams worker as a real subprocess on a real broker: outputs, crash recovery, scale-out.

Each test gets a broker of its own (fresh topics and offsets), publishes the same fixed input, and
compares what the worker(s) wrote with the pure pipelines' reference over that input.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import requests

from infra.broker import free_port
from tests.integration.streams.harness import (
    OutputReader,
    complete,
    fixed_input,
    fresh_broker,
    produce,
    reference,
    same,
    start_worker,
    stop,
)

COOLDOWN_MS = 500

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def items() -> list:
    return fixed_input()


@pytest.mark.timeout(120)
def test_one_worker_writes_exactly_the_reference_outputs(tmp_path: Path, items: list) -> None:
    with fresh_broker(tmp_path) as kafka:
        # Arrange
        landed = produce(kafka, items)
        expected = reference(landed, COOLDOWN_MS)
        reader = OutputReader(kafka)
        # Act
        port = free_port()
        worker = start_worker(kafka, "streams-one", tmp_path, "one", COOLDOWN_MS, web_port=port)
        try:
            reader.wait_for(expected, timeout_s=60)
            health = requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
            metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        finally:
            stop(worker)
            reader.close()
        # Assert
        assert worker.returncode == 0, (tmp_path / "worker-one.log").read_text()[-3000:]
        assert expected.signals and expected.dlq and len(expected.bars) > 20
        same(reader.out, expected)
        assert reader.out.stamps_ok
        assert health.status_code == 200 and len(health.json()["assigned"]) > 0
        assert 'tickpipe_streams_dead_letters_total{reason="undecodable"} 1.0' in metrics
        assert 'tickpipe_streams_dead_letters_total{reason="unknown_instrument"} 1.0' in metrics
        assert 'tickpipe_streams_dead_letters_total{reason="invalid_record"} 1.0' in metrics
        # no duplicates in an uninterrupted run
        assert reader.raw_counts["features.flow"] == len(expected.flow)
        assert reader.raw_counts["signals"] == len(expected.signals)


@pytest.mark.timeout(150)
@pytest.mark.xfail(
    strict=False,
    reason="open bug (issue 5): a kill -9 at an unlucky moment can leave the final bars different from an "
    "uninterrupted run; signals match. Reproduced 2026-11-26 14:37; see the session note. Remove once fixed.",
)
def test_kill_9_part_way_then_restart_gives_the_same_signals_and_final_bars(tmp_path: Path, items: list) -> None:
    with fresh_broker(tmp_path) as kafka:
        # Arrange
        landed = produce(kafka, items)
        expected = reference(landed, COOLDOWN_MS)
        reader = OutputReader(kafka)
        worker = start_worker(kafka, "streams-crash", tmp_path, "crash-1", COOLDOWN_MS)
        try:
            # Act: kill -9 once a fifth of the flow features are out (the worker is a little ahead)
            deadline = time.monotonic() + 60
            while len(reader.out.flow) < len(expected.flow) // 5 and time.monotonic() < deadline:
                reader.poll(0.05)
            stop(worker, signal.SIGKILL)
            seen_at_kill = len(reader.out.flow)
            worker = start_worker(kafka, "streams-crash", tmp_path, "crash-2", COOLDOWN_MS)
            reader.wait_for(expected, timeout_s=60)
        finally:
            stop(worker)
            reader.close()
        # Assert
        assert 0 < seen_at_kill < len(expected.flow), "the kill must land part-way"
        same(reader.out, expected)


@pytest.mark.timeout(150)
def test_two_workers_on_four_partitions_match_the_reference(tmp_path: Path, items: list) -> None:
    with fresh_broker(tmp_path) as kafka:
        # Arrange
        landed = produce(kafka, items)
        expected = reference(landed, COOLDOWN_MS)
        reader = OutputReader(kafka)
        # Act
        workers = [start_worker(kafka, "streams-two", tmp_path, f"two-{i}", COOLDOWN_MS) for i in range(2)]
        try:
            reader.wait_for(expected, timeout_s=90)
        finally:
            for w in workers:
                stop(w)
            reader.close()
        # Assert
        assert complete(reader.out, expected)
        same(reader.out, expected)
        for i in range(2):
            lines = (tmp_path / f"worker-two-{i}.log").read_text().splitlines()
            assert any("newly assigned partitions" in ln and "topic='md.trades'" in ln for ln in lines), i
