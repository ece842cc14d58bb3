"""The Faust topic objects of the streams app (names from ``schemas.topics.Topic``), all raw bytes."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TopicT

from schemas.topics import Topic


@dataclass(frozen=True)
class StreamTopics:
    """Inputs (``book_input`` merges md.book, md.health and, when enabled, md.bbo for one agent) and outputs."""

    book_input: TopicT
    trades: TopicT
    outputs: dict[Topic, TopicT]


def declare_topics(app: faust.App, with_bbo: bool) -> StreamTopics:
    """Return the topics (md.bbo among the book agent's inputs when ``with_bbo``); the broker must hold them."""
    def raw(*names: str) -> TopicT:
        return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    outputs = (
        Topic.FEATURES_BOOK, Topic.FEATURES_FLOW, Topic.BARS_1S, Topic.BARS_1M, Topic.SIGNALS, Topic.DLQ,
    )
    return StreamTopics(
        book_input=raw(Topic.BOOK, Topic.HEALTH, *([Topic.BBO] if with_bbo else [])),
        trades=raw(Topic.TRADES),
        outputs={t: raw(t) for t in outputs},
    )
