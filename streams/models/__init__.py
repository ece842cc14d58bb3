"""Signal models behind one small interface (:class:`streams.models.base.SignalModel`), by name.

``MODELS`` maps each model's name to the function building it from the streams settings: the worker
runs the default, ``tickpipe backtest --model NAME`` any of them on the archive.
"""

from __future__ import annotations

from collections.abc import Callable

from infra.settings import StreamsSettings
from streams.models.base import SignalModel
from streams.models.ofi_microprice import OfiMicropriceModel

MS = 1_000_000


def _ofi_microprice(s: StreamsSettings) -> SignalModel:
    return OfiMicropriceModel(
        window_ns=s.ofi_window_ms * MS, min_updates=s.ofi_min_updates, ofi_threshold=s.ofi_threshold,
        microprice_threshold=s.microprice_threshold, cooldown_ns=s.signal_cooldown_ms * MS,
    )


MODELS: dict[str, Callable[[StreamsSettings], SignalModel]] = {OfiMicropriceModel.name: _ofi_microprice}
DEFAULT_MODEL = OfiMicropriceModel.name
