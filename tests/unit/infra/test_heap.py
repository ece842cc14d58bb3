"""settle_heap: start-up objects leave the collector's passes; off leaves the collector as it was."""

from __future__ import annotations

import gc

from infra.heap import settle_heap


def _collected(obj: object) -> bool:
    """True while ``obj`` is in a generation the collector walks (frozen objects are in none)."""
    return any(o is obj for o in gc.get_objects())


def test_what_is_alive_at_settling_leaves_the_collectors_passes_and_later_objects_do_not() -> None:
    # Arrange
    gc.unfreeze()
    try:
        startup = {"a": [1, 2]}  # a tracked container, alive when start-up ends
        settle_heap(enabled=False)
        walked_when_off = _collected(startup)
        # Act
        settle_heap()
        later = {"b": [3]}
        # Assert
        assert walked_when_off
        assert not _collected(startup)
        assert _collected(later)
    finally:
        gc.unfreeze()
