"""The test suite's own rules: every test that starts real components has an explicit timeout.

A test in tests/integration, tests/e2e or tests/faults counts as starting components when it takes a
fixture or spawns a process itself.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PROCESS_TEST_DIRS = ("integration", "e2e", "faults")


def _has_timeout(decorators: list[ast.expr]) -> bool:
    return any("timeout" in ast.unparse(d) for d in decorators)


def _may_start_processes(test: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    # A test without fixtures that spawns nothing itself (e.g. a check of a document) needs no timeout.
    uses_fixtures = bool([a for a in test.args.args if a.arg not in ("self", "request")])
    body = ast.unparse(test)
    return uses_fixtures or any(word in body for word in ("subprocess", "Popen", "start_", "running_stack"))


def _module_timeout(tree: ast.Module) -> bool:
    for node in tree.body:
        is_pytestmark = isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets)
        if is_pytestmark and "timeout" in ast.unparse(node.value):
            return True
    return False


def _untimed_tests() -> list[str]:
    missing = []
    for folder in PROCESS_TEST_DIRS:
        for path in sorted((ROOT / "tests" / folder).rglob("test_*.py")):
            tree = ast.parse(path.read_text())
            if _module_timeout(tree):
                continue
            classes = {n: _has_timeout(n.decorator_list) for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                    inherited = any(node in cls.body and marked for cls, marked in classes.items())
                    if _may_start_processes(node) and not (_has_timeout(node.decorator_list) or inherited):
                        missing.append(f"{path.relative_to(ROOT)}::{node.name}")
    return missing


def test_every_integration_e2e_and_fault_test_has_an_explicit_timeout() -> None:
    assert _untimed_tests() == [], "add @pytest.mark.timeout(N) (or a module pytestmark) to these"


def test_pytest_timeout_is_active_with_a_suite_wide_ceiling(pytestconfig: pytest.Config) -> None:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]

    assert pytestconfig.pluginmanager.hasplugin("timeout")
    assert 0 < int(options["timeout"]) <= 600
    assert "--strict-markers" in options["addopts"]
