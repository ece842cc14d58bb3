"""Research on the ClickHouse archive: reports (matplotlib, Agg backend, PNG out) and :class:`Archive`.

Lives inside ``sinks/`` because it reads only what the sink archives and the views it creates
(the top-level layout has no research folder). ``tickpipe report spread|latency|execution``
runs the reports; ``from sinks.research import Archive`` gives a researcher DataFrames. pandas and
matplotlib (extra ``[research]``) load only when one of them is used, so ``tickpipe`` without the
extra still starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sinks.research.archive import Archive

__all__ = ["Archive"]


def __getattr__(name: str) -> Any:
    if name == "Archive":
        from sinks.research.archive import Archive

        return Archive
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
