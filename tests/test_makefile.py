"""`make test` runs both stages whatever the first one did, and fails if either failed."""

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


@pytest.mark.parametrize(
    ("fail", "named"),
    [("postgres", "postgres"), ("sqlite", "sqlite"), ("postgres sqlite", "postgres sqlite")],
)
def test_a_failed_stage_does_not_skip_the_other_and_is_named(tmp_path, fail, named):
    result, ran = make_test(tmp_path, fail)
    assert ran == ["postgres", "sqlite"]
    assert result.returncode != 0
    assert f"FAILED stage(s): {named}" in result.stderr


def test_both_stages_green_is_success(tmp_path):
    result, ran = make_test(tmp_path, "")
    assert ran == ["postgres", "sqlite"]
    assert result.returncode == 0, result.stderr
    assert "both stages passed" in result.stdout
