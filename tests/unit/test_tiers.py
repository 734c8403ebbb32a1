"""Tests sit in the tier their needs put them in: tests/unit/ (no database or services),
tests/integration/ (the database, one process), tests/e2e/ (processes, browsers, clones).

A file goes to the highest tier any of its tests needs. `make check` runs only tests/unit, so a
test that needs a database there would fail it; one that starts processes in tests/integration
would be slow where it is expected to be quick.
"""

from __future__ import annotations

import ast
import re

import pytest

from tests.processes import ROOT

TIERS = ("unit", "integration", "e2e")
# What puts a file in tests/e2e/: a marker, a fixture that starts processes, or processes of its
# own (a project's manage.py, celery, make, a browser).
E2E_MARKS = re.compile(r"pytest\.mark\.(e2e|browser|newcomer)\b")
E2E_FIXTURES = {"worker", "celery_worker", "two_workers", "cluster", "fresh_clone", "live_server"}
E2E_CALLS = re.compile(
    r"\bsubprocess\.(run|Popen|call|check_output|check_call)\(|\b(CeleryProcess|"
    r"workers_parked|restart_postgres|stop_redis|BrowserTestCase)\b"
)
# What puts a file in tests/integration/ at least: the database.
DATABASE_MARK = re.compile(r"pytest\.mark\.django_db\b")
DATABASE_FIXTURES = {"db", "transactional_db"}


def fixtures_used(source: str) -> set[str]:
    """The argument names of the file's functions: the fixtures its tests and fixtures ask for."""
    return {
        arg.arg
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef)
        for arg in node.args.args
    }


def needs(source: str) -> str:
    """The lowest tier that gives a file what it uses."""
    used = fixtures_used(source)
    if E2E_MARKS.search(source) or used & E2E_FIXTURES or E2E_CALLS.search(source):
        return "e2e"
    if DATABASE_MARK.search(source) or used & DATABASE_FIXTURES:
        return "integration"
    return "unit"


def tier_files(tier: str) -> list:
    """The test files of a tier (this one left out: it names what it looks for)."""
    found = (ROOT / "tests" / tier).rglob("test_*.py")
    return sorted(path for path in found if path.name != "test_tiers.py")


def test_every_test_file_is_in_a_tier():
    stray = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("test_*.py")
        if path.relative_to(ROOT / "tests").parts[0] not in TIERS
        and "hostproject" not in path.parts
    ]
    assert stray == [], "place these in tests/unit, tests/integration or tests/e2e (see above)"


@pytest.mark.parametrize("tier", ["unit", "integration"])
def test_no_file_needs_more_than_its_tier(tier):
    too_big = []
    for path in tier_files(tier):
        needed = needs(path.read_text())
        if TIERS.index(needed) > TIERS.index(tier):
            too_big.append(f"{path.relative_to(ROOT)} needs {needed}")
    assert too_big == []


def test_the_tiers_hold_tests():
    for tier in TIERS:
        assert tier_files(tier), f"tests/{tier}/ holds no test file"


def test_no_test_finds_the_repository_by_its_own_depth():
    """A file moved to another tier or area must not point elsewhere: tests.processes.ROOT."""
    by_depth = [
        str(path.relative_to(ROOT))
        for tier in TIERS
        for path in tier_files(tier)
        if re.search(r"Path\(__file__\)\.resolve\(\)\.parent", path.read_text())
    ]
    assert by_depth == []
