"""The Faust topic objects of the streams app (names from ``schemas.topics.Topic``), all raw bytes."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TopicT

from schemas.topics import Topic


@dataclass(frozen=True)
class StreamTopics:
    """Inputs (``book_input`` merges md.book and md.health so one agent sees both) and outputs."""

    book_input: TopicT
    trades: TopicT
    outputs: dict[Topic, TopicT]


def declare_topics(app: faust.App) -> StreamTopics:
    """Return the topics; the broker must already hold them (``tickpipe topics create``)."""
    def raw(*names: str) -> TopicT:
        return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    outputs = (
        Topic.FEATURES_BOOK, Topic.FEATURES_FLOW, Topic.BARS_1S, Topic.BARS_1M, Topic.SIGNALS, Topic.DLQ,
    )
    return StreamTopics(
        book_input=raw(Topic.BOOK, Topic.HEALTH),
        trades=raw(Topic.TRADES),
        outputs={t: raw(t) for t in outputs},
    )
