"""Every project name a benchmark imports exists: benchmarks are not run by `make test`, so a
rename must not leave them broken until someone next measures (one was, for a whole release)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.processes import ROOT

PROJECT_PACKAGES = ("eventing", "triggers", "mission_control", "tests", "bench", "config")
BENCH_FILES = sorted((ROOT / "bench").glob("*.py"))


def project_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every project import in the file, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in PROJECT_PACKAGES:
                found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PROJECT_PACKAGES:
                    found.append((alias.name, []))
    return found


def test_there_are_benchmarks():
    assert len(BENCH_FILES) > 5


@pytest.mark.parametrize("path", BENCH_FILES, ids=lambda p: p.name)
def test_every_project_name_a_benchmark_imports_exists(path):
    for module_name, names in project_imports(path):
        module = importlib.import_module(module_name)
        for name in names:
            if name != "*" and not hasattr(module, name):
                importlib.import_module(f"{module_name}.{name}")  # a submodule, or ImportError
