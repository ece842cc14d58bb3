"""The product without its dev harness: a service install pulls neither the local stack nor the plots."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HARNESS = ("chdb", "supervisor", "matplotlib", "pandas", "testcontainers", "pytest", "hypothesis")
# every module a service process imports at start, plus the CLI (which registers every command)
SERVICES = ("infra.cli", "producers.service", "streams.worker", "streams.app", "sinks.service", "executor.service",
            "infra.topic_tail")
# makes `import chdb` (and the others) fail as in an install without the extras
BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)")
        return None
sys.meta_path.insert(0, Block())
"""


def _deps() -> tuple[list[str], dict[str, list[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"], project["optional-dependencies"]


def _name(requirement: str) -> str:
    return requirement.split("[")[0].split("=")[0].split(";")[0].strip().lower()


def test_the_service_install_leaves_the_harness_to_extras() -> None:
    core, extras = _deps()
    assert not {_name(r) for r in core} & set(HARNESS)
    assert {_name(r) for r in extras["local"]} == {"chdb", "supervisor"}
    assert {_name(r) for r in extras["research"]} == {"matplotlib", "pandas"}


def test_every_service_imports_without_the_extras() -> None:
    code = BLOCK.format(blocked=set(HARNESS)) + "\n".join(f"import {m}" for m in SERVICES) + "\nprint('ok')"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_command_of_an_extra_says_what_to_install() -> None:
    code = BLOCK.format(blocked={"chdb", "supervisor"}) + "import sys\nfrom infra.cli import main\nsys.argv = ['tickpipe', 'warehouse']\nmain()"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2
    assert "pip install 'tickpipe[local]'" in done.stderr and "chdb" in done.stderr


def test_top_reads_the_archive_and_the_health_endpoints_not_the_services_code() -> None:
    code = BLOCK.format(blocked={"executor", "producers", "streams", "sinks"}) + "import infra.top\nprint('ok')"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_the_cli_of_a_service_image_runs_without_the_embedded_warehouse() -> None:
    # the Dockerfile copies the service packages and the simulated venue (compose and the k8s base run it),
    # not the embedded warehouse: a cluster has its ClickHouse
    code = BLOCK.format(blocked={"warehouse"} | set(HARNESS)) + (
        "import sys\nfrom infra.cli import main\nsys.argv = ['tickpipe', '--help']\nmain()")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert " feed " in done.stdout and " sim-exchange " in done.stdout and " warehouse " not in done.stdout
    copied = {line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")}
    assert "warehouse" not in copied and "tests" not in copied and "bench" not in copied


def test_the_research_package_imports_pandas_only_when_its_archive_is_used() -> None:
    # sinks.research.window serves the CLI of every install; Archive needs the [research] extra
    code = BLOCK.format(blocked={"pandas", "matplotlib"}) + (
        "import sinks.research\nfrom sinks.research.window import parse_duration_s\nprint('ok')\n"
        "try:\n    from sinks.research import Archive\nexcept ModuleNotFoundError as exc:\n    print(exc)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["ok", "No module named 'pandas' (blocked)"]
