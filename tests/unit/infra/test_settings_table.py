"""README's settings table is generated from the Settings class and must stay in step with it."""

from __future__ import annotations

from pathlib import Path

from infra.settings import Settings
from infra.settings_table import markdown_table, readme_table, setting_rows

README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_settings_table_matches_the_settings_class() -> None:
    embedded = readme_table(README.read_text())

    assert embedded, "README.md lacks the settings-table markers"
    assert embedded == markdown_table(), (
        "README.md's settings table is out of date: regenerate it with "
        "`python -m infra.settings_table` (or paste `tickpipe settings --markdown`)"
    )


def test_every_setting_is_a_row_with_a_description() -> None:
    rows = {r.env: r for r in setting_rows()}

    sections = [n for n, f in Settings.model_fields.items() if hasattr(f.annotation, "model_fields")]
    expected = sum(len(Settings.model_fields[n].annotation.model_fields) for n in sections)
    expected += len(Settings.model_fields) - len(sections)
    assert len(rows) == expected
    assert "TICKPIPE_BROKER__PORT" in rows and rows["TICKPIPE_BROKER__PORT"].default == "9092"
    assert all(r.description for r in rows.values()), [r.env for r in rows.values() if not r.description]
