"""`tickpipe sql` rendering and prompt, durations, backoff, outage detection (pure parts)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from infra.backoff import Backoff
from sinks.research.spread import outage_intervals
from sinks.research.window import parse_duration_s
from sinks.sql_shell import OutputFormat, format_table, interactive, parse_tsv_with_names


def test_tsv_with_names_is_unescaped() -> None:
    columns, rows = parse_tsv_with_names("a\tb\nx\\ty\t1\nline\\nbreak\t\\N\n")
    assert columns == ["a", "b"] and rows == [["x\ty", "1"], ["line\nbreak", "\\N"]]


def test_table_aligns_numbers_right_and_text_left() -> None:
    text = format_table(["symbol", "price"], [["BTCUSDT", "64000.5"], ["ETH", "3000.12345678"]])
    assert text.splitlines() == [
        "symbol  |         price",
        "--------+--------------",
        "BTCUSDT |       64000.5",
        "ETH     | 3000.12345678",
        "(2 rows)",
    ]


def test_statement_without_result_prints_ok() -> None:
    assert format_table([], []) == "OK\n"


class _FakeClient:
    """Stands in for the ClickHouse client: returns canned TSV for the prompt's control-flow test."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def raw_query(self, statement: str, fmt: str) -> bytes:
        self.statements.append(statement)
        if "boom" in statement:
            raise RuntimeError("Code: 62. Syntax error")
        return b"n\n1\n"


def test_prompt_runs_multiline_statements_survives_errors_and_keeps_history(tmp_path: Path) -> None:
    lines = iter(["SELECT", "1;", "boom;", "", "SELECT 2", "", "quit"])
    out: list[str] = []
    client = _FakeClient()
    interactive(client, OutputFormat.TABLE, tmp_path / "hist", read=lambda _: next(lines), write=out.append)
    assert client.statements == ["SELECT\n1", "boom", "SELECT 2"]
    assert "error: Code: 62. Syntax error\n" in out and out.count("n\n-\n1\n(1 row)\n") == 2
    assert (tmp_path / "hist").exists()


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172_800)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "0h", "-1h", "1w"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration_s(text)


def test_backoff_grows_exponentially_is_capped_and_jittered() -> None:
    high, low = Backoff(0.2, 5.0, rand=lambda: 1.0), Backoff(0.2, 5.0, rand=lambda: 0.0)
    assert [high.delay(n) for n in range(7)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert low.delay(3) == 0.8


def test_outages_are_holes_longer_than_the_threshold() -> None:
    buckets = pd.Series(pd.to_datetime(["2025-01-01 00:00:00", "2025-01-01 00:00:01", "2025-01-01 00:00:09",
                                        "2025-01-01 00:00:10"]))
    holes = outage_intervals(buckets, outage_after_s=5)
    assert [(str(a), str(b)) for a, b in holes] == [("2025-01-01 00:00:01", "2025-01-01 00:00:09")]
