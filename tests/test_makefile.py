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
    calls = tmp_path / "calls"
    result = subprocess.run(
        ["make", "-s", "test", f"VENV={venv}"],
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
