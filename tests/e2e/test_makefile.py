"""`make test` runs every stage whatever the others did, and fails if any failed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.processes import ROOT

# Stands in for the venv's Python and ruff: records each call, fails the stages named in
# FAIL_STAGES (a stage is known by what it runs: STAGE_CALLS).
FAKE_PROGRAM = """#!/bin/sh
echo "$(basename "$0") $*" >> "$CALLS"
for stage in $FAIL_STAGES; do
  case "$stage" in
    lint) pattern="ruff *" ;;
    unit) pattern="python -m tests.stack sqlite -- * tests/unit*" ;;
    postgres) pattern="python -m tests.stack postgres -- * not serial *" ;;
    serial) pattern="python -m tests.stack postgres -- * -m serial*" ;;
    sqlite) pattern="python -m tests.stack sqlite -- * tests/e2e *" ;;
    rabbitmq) pattern="python -m tests.stack rabbitmq *" ;;
  esac
  case "$(basename "$0") $*" in $pattern) exit 3 ;; esac
done
exit 0
"""
STAGE_RE = re.compile(r"^== make test: stage (\w+)", re.MULTILINE)


def make_test(tmp_path, fail: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`make test` with a fake interpreter and ruff; the result and the stages it ran."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for program in ("python", "ruff"):
        fake = venv / "bin" / program
        fake.write_text(FAKE_PROGRAM)
        fake.chmod(0o755)
    (venv / ".installed").touch()  # newer than the requirements: `install` has nothing to do
    node_client = tmp_path / "node-client-installed"
    node_client.touch()  # likewise for Space Cloud's JS client
    calls = tmp_path / "calls"
    result = subprocess.run(
        ["make", "-s", "test", f"VENV={venv}", f"NODE_CLIENT={node_client}"],
        cwd=ROOT,
        env={**os.environ, "CALLS": str(calls), "FAIL_STAGES": fail},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, STAGE_RE.findall(result.stdout)


STAGES = ["lint", "unit", "postgres", "serial", "sqlite", "rabbitmq"]


@pytest.mark.parametrize(
    ("fail", "named"),
    [
        ("lint", "lint"),
        ("unit", "unit"),
        ("postgres", "postgres"),
        ("serial", "serial"),
        ("sqlite", "sqlite"),
        ("rabbitmq", "rabbitmq"),
        ("lint postgres rabbitmq", "lint postgres rabbitmq"),
    ],
)
def test_a_failed_stage_does_not_skip_the_others_and_is_named(tmp_path, fail, named):
    result, ran = make_test(tmp_path, fail)
    assert ran == STAGES
    assert result.returncode != 0
    assert f"FAILED stage(s): {named}" in result.stderr


def test_every_stage_green_is_success(tmp_path):
    result, ran = make_test(tmp_path, "")
    assert ran == STAGES
    assert result.returncode == 0, result.stderr
    assert "all six stages passed" in result.stdout


def test_the_stages_select_the_tiers_by_directory(tmp_path):
    make_test(tmp_path, "")
    calls = (tmp_path / "calls").read_text().splitlines()
    # In stage order: the stack each pytest run gets, and what pytest is asked to run.
    runs = [
        (call.split()[3], call.split(" -m pytest ", 1)[1].strip())
        for call in calls
        if " -m pytest " in call
    ]
    parallel = "-n 3 --dist loadgroup"
    report = "--junitxml=var/test-reports/"
    assert runs == [
        ("sqlite", f"tests/unit {report}unit.xml"),
        (
            "postgres",
            f"tests/integration tests/e2e -m not newcomer and not serial {parallel} "
            f"{report}postgres.xml",
        ),
        ("postgres", f"tests/e2e -m serial {report}serial.xml"),
        (
            "sqlite",
            f"tests/integration tests/e2e -m stacks or newcomer {parallel} {report}sqlite.xml",
        ),
        ("rabbitmq", f"tests/e2e -m stacks {report}rabbitmq.xml"),
    ]
    # Then the failed tests of every stage are named again, from those reports.
    assert calls[-1] == "python -m tests.failures var/test-reports"
    assert calls[:2] == ["ruff check .", "ruff format --check ."]


def test_make_check_lints_and_runs_the_unit_tier(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / ".installed").touch()
    node_client = tmp_path / "node-client-installed"
    node_client.touch()
    planned = subprocess.run(
        # Under `make test` itself make would announce the directory: not part of the plan.
        [
            "make",
            "--no-print-directory",
            "-n",
            "check",
            f"VENV={venv}",
            f"NODE_CLIENT={node_client}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert planned == [
        f"{venv}/bin/ruff check .",
        f"{venv}/bin/ruff format --check .",
        f"{venv}/bin/python -m tests.stack sqlite -- {venv}/bin/python -m pytest tests/unit -q ",
    ]
    for tier in ("unit", "integration", "e2e"):
        assert (ROOT / "tests" / tier).is_dir(), f"tests/{tier}/ is missing"


# Stands in for `python3` and the venv's Python: records each call; `-m venv DIR` puts a copy
# of itself at DIR/bin/python, so the recipe's next steps call it too.
FAKE_INTERPRETER = """#!/bin/sh
echo "$*" >> "$CALLS"
if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; fi
exit 0
"""


def make_in_fresh_venv(tmp_path, target: str, *marks: str) -> list[str]:
    """`make <target>` with a fake interpreter and a venv folder holding only `marks`; the
    interpreter's calls."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    fake = tmp_path / "python3"
    fake.write_text(FAKE_INTERPRETER)
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    venv.mkdir()
    if marks:  # a venv made earlier: its interpreter is there
        (venv / "bin").mkdir()
        shutil.copy(fake, venv / "bin" / "python")
    for mark in marks:
        (venv / mark).touch()  # newer than the requirements files
    calls = tmp_path / "calls"
    calls.touch()
    subprocess.run(
        ["make", "-s", target, f"VENV={venv}", f"PYTHON={fake}", "PORT=1"],
        cwd=ROOT,
        env={**os.environ, "CALLS": str(calls)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return calls.read_text().splitlines()


def test_make_run_installs_the_runtime_requirements_only(tmp_path):
    calls = make_in_fresh_venv(tmp_path, "run")
    assert "-m pip install -q -r requirements.txt" in calls
    assert not [call for call in calls if "requirements-dev.txt" in call]
    assert calls[-1] == "scripts/run.py --port 1"


def test_make_install_installs_the_dev_requirements(tmp_path):
    calls = make_in_fresh_venv(tmp_path, "install")
    assert "-m pip install -q -r requirements-dev.txt" in calls


def test_make_run_in_a_venv_with_the_dev_set_installs_nothing(tmp_path):
    calls = make_in_fresh_venv(tmp_path, "run", ".installed")
    assert calls == ["scripts/run.py --port 1"]


def test_install_runs_npm_ci_for_the_js_client_when_it_is_missing(tmp_path):
    """A fresh clone's `make test` installs Space Cloud's JS client, not only .ci/run."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()
    missing = tmp_path / "node_modules" / ".package-lock.json"
    result = subprocess.run(
        ["make", "-n", "test", f"VENV={venv}", f"NODE_CLIENT={missing}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    planned = result.stdout
    assert "npm ci" in planned
    assert planned.index("npm ci") < planned.index("tests.stack postgres")
    assert "npm ci" not in (ROOT / ".ci" / "run").read_text()
