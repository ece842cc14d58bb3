"""Raw capture and playback in the recording format of docs/recording.md.

One JSON object per line, exactly as received::

    {"t": <receive time, int ns>, "kind": "open"|"ws"|"rest", "url": "<url>", "data": "<frame text>"}

Playback feeds the lines to a :class:`FeedPipeline` - the same parser, merge and book code as live -
with the recorded receive times as its clock, so the output is deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from producers.errors import ParseError
from producers.pipeline import FeedPipeline

log = logging.getLogger(__name__)

PLAYBACK_CONNECTION = "playback"
_TICK_NS = 20_000_000


class Recorder:
    """Append inputs to a recording file; usable as a :data:`producers.service.Tap`."""

    def __init__(self, path: Path) -> None:
        self._file: IO[bytes] = open(path, "wb")  # noqa: SIM115 (closed in close())
        self.lines = 0

    def __call__(self, kind: str, url: str, data: str | bytes, t: int) -> None:
        """Write one line."""
        text = data.decode("utf-8", "replace") if isinstance(data, bytes | bytearray) else data
        self._file.write(orjson.dumps({"t": t, "kind": kind, "url": url, "data": text}) + b"\n")
        self.lines += 1

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()


def read_recording(path: Path) -> Iterator[tuple[int, str, str, str]]:
    """Yield ``(t, kind, url, data)`` per line; raise :class:`ParseError` naming the line if malformed."""
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj: dict[str, Any] = orjson.loads(line)
                t, kind, url, data = obj["t"], obj["kind"], obj["url"], obj["data"]
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise ParseError(f"{path}:{n}: not a recording line ({exc})") from None
            if kind not in ("open", "ws", "rest") or type(t) is not int:
                raise ParseError(f"{path}:{n}: unknown kind {kind!r} or bad time {t!r}")
            yield t, kind, url, data


def play(path: Path, pipeline: FeedPipeline) -> int:
    """Feed every line of ``path`` to ``pipeline``; return the number of lines."""
    lines = 0
    next_tick = 0
    connection_open = False
    last_t = 0
    for t, kind, url, data in read_recording(path):
        lines += 1
        last_t = t
        _play_line(pipeline, t, kind, url, data, connection_open)
        connection_open = connection_open or kind == "open"
        if t >= next_tick:
            pipeline.tick(t)
            next_tick = t + _TICK_NS
    # release anything still held, as the live feed would once its hold ran out
    pipeline.tick(last_t + 3_600_000_000_000)
    return lines


def _play_line(pipeline: FeedPipeline, t: int, kind: str, url: str, data: str, connection_open: bool) -> None:
    try:
        if kind == "ws":
            pipeline.frame(PLAYBACK_CONNECTION, data, t)
        elif kind == "rest":
            pipeline.rest(url, data, t)
        else:
            if connection_open:
                pipeline.close(PLAYBACK_CONNECTION, "reconnect in recording", t)
            pipeline.add_symbols(pipeline.adapter.stream_symbols(url))
            pipeline.open(PLAYBACK_CONNECTION, url, t)
    except Exception as exc:  # task boundary, as in the live feed thread
        log.exception("playback input failed", extra={"kind": kind, "raw": data[:500]})
        pipeline.internal_error(PLAYBACK_CONNECTION, data, exc, t)
