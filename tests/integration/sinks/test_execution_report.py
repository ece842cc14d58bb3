"""`tickpipe report execution`: every panel drawn and the CSV summary, from a generated archive."""

from __future__ import annotations

import csv
import random
import time
from collections.abc import Callable
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest
from typer.testing import CliRunner

from infra.cli import app
from sinks.research.archive import Archive as ResearchArchive
from sinks.research.execution import SUMMARY_COLUMNS, execution_report
from tests.integration.sinks.conftest import Archive
from tests.integration.sinks.execution_data import S, execution_history
from tests.integration.sinks.known_data import write_history
from tests.integration.sinks.test_execution_views import Expected


@pytest.fixture
def recent_archive(fresh_archive: Callable[[], Archive]) -> tuple[Archive, dict[str, list[dict[str, Any]]]]:
    """A generated history that ended a few minutes ago, with fills of both models."""
    archive: Archive = fresh_archive()
    rnd = random.Random(18)
    while True:
        history = execution_history(rnd, time.time_ns() - 10 * 60 * S)
        received = [b["ts_recv"] for b in history["md.bbo"]]
        fills = history["fills"]
        if (len({s["model"] for s in history["signals"]}) == 2 and any(f["liquidity"] == "maker" for f in fills)
                and any(min(received) <= f["ts_event"] <= max(received) - S for f in fills)):
            break  # something to draw in every panel: both models, a passive fill, a fill marked at 1 s
    write_history(archive.client, history)
    return archive, history


def _coloured_pixels(png: Path) -> list[int]:
    """Pixels drawn in colour (not black, grey or white: data, not text or axes) per panel of the 2x2 grid."""
    image = matplotlib.image.imread(png)[:, :, :3]
    coloured = (image.max(axis=2) - image.min(axis=2)) > 0.25
    h, w = coloured.shape
    return [int(np.sum(coloured[r * h // 2:(r + 1) * h // 2, c * w // 2:(c + 1) * w // 2]))
            for r in (0, 1) for c in (0, 1)]


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_execution_report_draws_every_panel_and_writes_one_csv_row_per_model(
        recent_archive: tuple[Archive, dict], tmp_path: Path) -> None:
    # Arrange
    archive, history = recent_archive
    png, summary_csv = tmp_path / "execution.png", tmp_path / "execution.csv"
    env = {"TICKPIPE_WAREHOUSE__URL": archive.warehouse.url, "TICKPIPE_WAREHOUSE__DATABASE": archive.warehouse.database}

    # Act
    result = CliRunner().invoke(app, ["report", "execution", "--since", "1h", "--out", str(png), "--csv",
                                      str(summary_csv)], env=env)

    # Assert
    assert result.exit_code == 0, result.output
    with localcontext(prec=200):
        expected = Expected(history)
        pnl = expected.pnl_rows()
    orders = len({o["client_order_id"] for o in history["orders"]})
    assert f"{orders} order(s), {len(expected.fills)} fill(s)" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(n > 200 for n in _coloured_pixels(png)), _coloured_pixels(png)
    with summary_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(SUMMARY_COLUMNS)
    assert sorted(r["model"] for r in rows) == sorted(set(expected.fills["model"]) | set(expected.signals["model"]))
    for row in rows:
        fills = expected.fills[expected.fills["model"] == row["model"]]
        assert int(row["fills"]) == len(fills)
        assert Decimal(row["filled_qty"]) == sum(fills["qty"], Decimal(0))
        if len(fills):
            last = fills.sort_values(["ts_event", "trade_id"]).iloc[-1]["trade_id"]
            assert Decimal(row["realised_pnl"]) == pnl[last][4]


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_an_empty_window_still_draws_a_readable_report(fresh_archive: Callable[[], Archive], tmp_path: Path) -> None:
    archive = fresh_archive()

    result = execution_report(ResearchArchive(archive.client), 3600, tmp_path / "empty.png", tmp_path / "empty.csv")

    assert (result.orders, result.fills, result.models) == (0, 0, ())
    assert _coloured_pixels(tmp_path / "empty.png") == [0, 0, 0, 0]  # the panels say "no ... in the window"
    assert (tmp_path / "empty.csv").read_text().splitlines() == [",".join(SUMMARY_COLUMNS)]
