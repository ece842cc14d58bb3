"""librdkafka settings shared by every tickpipe service: at-least-once consumers and idempotent producers."""

from __future__ import annotations

from typing import Any

from infra.settings import KafkaSettings


def manual_commit_consumer_config(kafka: KafkaSettings, group_id: str, **extra: Any) -> dict[str, Any]:
    """Return a group consumer's settings whose offsets move only when the service says its work is done.

    Auto-commit and auto offset store are off (the service stores and commits after its output is
    acknowledged), a new group starts at the earliest offset, and the session timeouts come from
    ``kafka`` (short locally: a group join takes about ``session.timeout.ms``), and so does the fetch
    queue backoff (librdkafka's 1 s default stalls a full prefetch queue). ``extra`` adds or overrides keys.
    """
    return {
        "bootstrap.servers": kafka.bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": kafka.session_timeout_ms,
        "heartbeat.interval.ms": kafka.heartbeat_interval_ms,
        "fetch.queue.backoff.ms": kafka.fetch_queue_backoff_ms,
        **extra,
    }


def idempotent_producer_config(kafka: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """Return a producer's settings that never duplicate or reorder a record on retry (idempotence, acks=all)."""
    return {"bootstrap.servers": kafka.bootstrap, "enable.idempotence": True, "acks": "all", **extra}
