"""`tickpipe bench` runs every bench script in turn; a failing one is reported and does not stop the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from infra.bench_runner import bench_scripts, run_benchmarks, summary_table


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "b_fails.py").write_text("import sys\nprint('half done')\nsys.exit(3)\n")
    (folder / "a_ok.py").write_text("print('records/s: 123')\n")
    return folder


def test_scripts_are_found_in_name_order_without_private_modules(bench_dir: Path) -> None:
    assert [p.name for p in bench_scripts(bench_dir)] == ["a_ok.py", "b_fails.py"]
    assert [p.name for p in bench_scripts(bench_dir, ["b_fails"])] == ["b_fails.py"]


def test_an_unknown_script_name_is_refused_naming_it(bench_dir: Path) -> None:
    with pytest.raises(ValueError, match="pipeline"):
        bench_scripts(bench_dir, ["pipeline"])


def test_every_script_runs_and_failures_are_reported(bench_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    console = Console(record=True, width=100)

    results = run_benchmarks(bench_scripts(bench_dir), console, timeout_s=60)
    console.print(summary_table(results))

    assert [(r.script.name, r.returncode) for r in results] == [("a_ok.py", 0), ("b_fails.py", 3)]
    out = capfd.readouterr().out
    assert "records/s: 123" in out and "half done" in out
    text = console.export_text()
    assert "[1/2] a_ok.py" in text and "[2/2] b_fails.py" in text and "failed (3)" in text


def test_an_overrunning_script_is_interrupted_and_stops_what_it_started_before_it_ends(tmp_path: Path) -> None:
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    marker = tmp_path / "services-stopped"
    (folder / "slow.py").write_text(
        f"import time\ntry:\n    time.sleep(120)\nfinally:\n    open({str(marker)!r}, 'w').write('stopped')\n"
    )

    results = run_benchmarks(bench_scripts(folder), Console(width=100), timeout_s=2, grace_s=30)

    assert [r.returncode for r in results] == [-1]
    assert marker.read_text() == "stopped"
