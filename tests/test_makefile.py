"""`make test` runs every stage whatever the others did, and fails if any failed."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.processes import ROOT

# Stands in for the venv's Python: records each call, fails the stages named in FAIL_STAGES.
FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$CALLS"
for stage in $FAIL_STAGES; do
  case " $* " in *" -m tests.stack $stage "*) exit 3 ;; esac
done
exit 0
"""


def make_test(tmp_path, fail: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`make test` with a fake interpreter; the result and the stages it ran."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"
    fake.write_text(FAKE_PYTHON)
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
    ran = [line.split()[2] for line in calls.read_text().splitlines()]
    return result, ran


STAGES = ["postgres", "sqlite", "rabbitmq"]


@pytest.mark.parametrize(
    ("fail", "named"),
    [
        ("postgres", "postgres"),
        ("sqlite", "sqlite"),
        ("rabbitmq", "rabbitmq"),
        ("postgres rabbitmq", "postgres rabbitmq"),
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
    assert "all three stages passed" in result.stdout


def test_the_rabbitmq_stage_runs_the_e2e_tests(tmp_path):
    make_test(tmp_path, "")
    [call] = [c for c in (tmp_path / "calls").read_text().splitlines() if "stack rabbitmq" in c]
    assert call.split(" -- ", 1)[1].endswith("-m pytest tests -m e2e")


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
