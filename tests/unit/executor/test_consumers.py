"""Consumer errors of the executor's loops are counted per loop and logged with their context."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError, Message
from prometheus_client import CollectorRegistry

from executor.consumers import report_client_error, report_consumer_error, tail_start
from executor.metrics import ExecutorMetrics


def test_a_consumer_error_is_counted_per_loop_and_logged_with_topic_partition_and_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = ExecutorMetrics(CollectorRegistry())
    msg = Message(topic="executor.control", partition=0, error=KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))

    with caplog.at_level(logging.ERROR, logger="executor.consumers"):
        report_consumer_error(metrics, msg, "control")

    assert metrics.consumer_errors.labels("control")._value.get() == 1
    assert metrics.consumer_errors.labels("market")._value.get() == 0
    (record,) = caplog.records
    assert record.getMessage() == "consumer error"
    assert (record.loop, record.topic, record.partition, record.code) == (
        "control", "executor.control", 0, KafkaError.UNKNOWN_TOPIC_OR_PART)
    assert "Unknown topic or partition" in record.error and record.fatal is False


def test_end_of_partition_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    metrics = ExecutorMetrics(CollectorRegistry())
    msg = Message(topic="md.bbo", partition=3, error=KafkaError(KafkaError._PARTITION_EOF))

    report_consumer_error(metrics, msg, "market")

    assert metrics.consumer_errors.labels("market")._value.get() == 0 and not caplog.records


def test_an_error_of_the_client_as_a_whole_is_counted_per_loop_and_logged_with_its_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # what librdkafka hands to error_cb (never to consume()) when the broker goes away
    metrics = ExecutorMetrics(CollectorRegistry())

    with caplog.at_level(logging.ERROR, logger="executor.consumers"):
        report_client_error(metrics, KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"), "market")

    assert metrics.consumer_errors.labels("market")._value.get() == 1
    (record,) = caplog.records
    assert (record.loop, record.topic, record.code, record.error_name) == (
        "market", None, KafkaError._ALL_BROKERS_DOWN, "_ALL_BROKERS_DOWN")
    assert record.error == "1/1 brokers are down" and record.fatal is False


def test_the_tail_starts_back_from_the_end_but_never_before_the_low_watermark() -> None:
    assert tail_start(0, 1000, 200) == 800
    assert tail_start(900, 1000, 200) == 900
    assert tail_start(0, 0, 200) == 0
