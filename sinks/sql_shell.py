"""``tickpipe sql``: run SQL against the archive and print an aligned table, CSV or JSON lines.

ClickHouse formats the values itself (``TabSeparatedWithNames``, ``CSVWithNames``, ``JSONEachRow``),
so decimals and nanosecond times print exactly as stored; this module only aligns the columns.
"""

from __future__ import annotations

import readline
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from clickhouse_connect.driver.client import Client

_TSV_ESCAPES = {"\\t": "\t", "\\n": "\n", "\\\\": "\\", "\\'": "'", "\\0": "\0", "\\r": "\r", "\\b": "\b", "\\f": "\f"}
PROMPT = "tickpipe> "
CONTINUE_PROMPT = "       -> "


class OutputFormat(StrEnum):
    """How ``tickpipe sql`` prints a result."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


_CLICKHOUSE_FORMAT = {OutputFormat.TABLE: "TabSeparatedWithNames", OutputFormat.CSV: "CSVWithNames",
                      OutputFormat.JSON: "JSONEachRow"}


def _unescape(field: str) -> str:
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        pair = field[i:i + 2]
        if pair in _TSV_ESCAPES:
            out.append(_TSV_ESCAPES[pair])
            i += 2
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_tsv_with_names(text: str) -> tuple[list[str], list[list[str]]]:
    """Return ``(column names, rows)`` from ClickHouse ``TabSeparatedWithNames`` output."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return [], []
    rows = [[_unescape(f) for f in line.split("\t")] for line in lines]
    return rows[0], rows[1:]


def _display(value: str) -> str:
    return value.replace("\n", "\\n").replace("\t", "\\t")


def format_table(columns: list[str], rows: list[list[str]]) -> str:
    """Return an aligned text table: numbers right-aligned, text left-aligned, with a row count."""
    if not columns:
        return "OK\n"
    shown = [[_display(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in shown]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(r[i]) for r in shown) and bool(shown) for i in range(len(columns))]

    def line(values: list[str]) -> str:
        cells = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return " | ".join(cells).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    body = [line(columns), rule, *(line(r) for r in shown)]
    return "\n".join(body) + f"\n({len(rows)} row{'s' if len(rows) != 1 else ''})\n"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text in ("\\N", "NULL")
    return True


def run_statement(client: Client, sql: str, output: OutputFormat) -> str:
    """Run ``sql`` and return its result rendered as ``output``."""
    statement = sql.strip().rstrip(";").strip()
    raw = client.raw_query(statement, fmt=_CLICKHOUSE_FORMAT[output])
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    if output is OutputFormat.TABLE:
        return format_table(*parse_tsv_with_names(text))
    return text


def interactive(client: Client, output: OutputFormat, history: Path,
                read: Callable[[str], str] = input, write: Callable[[str], object] = sys.stdout.write) -> None:
    """Prompt for statements (end with ``;`` or a blank line) until ``exit``/``quit``/EOF; keep history."""
    history.parent.mkdir(parents=True, exist_ok=True)
    try:
        readline.read_history_file(history)
    except (FileNotFoundError, OSError):
        pass
    readline.set_history_length(10_000)
    buffer: list[str] = []
    try:
        while True:
            try:
                line = read(CONTINUE_PROMPT if buffer else PROMPT)
            except EOFError:
                write("\n")
                break
            except KeyboardInterrupt:
                buffer.clear()
                write("\n")
                continue
            if not buffer and line.strip().lower() in ("exit", "quit", "\\q"):
                break
            if line.strip():
                buffer.append(line)
            if buffer and (line.rstrip().endswith(";") or not line.strip()):
                statement, buffer = "\n".join(buffer), []
                try:
                    write(run_statement(client, statement, output))
                except Exception as exc:  # noqa: BLE001 (show the server's message, keep the prompt)
                    write(f"error: {exc}\n")
    finally:
        readline.write_history_file(history)
