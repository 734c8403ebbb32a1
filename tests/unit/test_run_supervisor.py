"""scripts/run.py (`make run`) restarts a worker or beat that exits, with a growing delay."""

from __future__ import annotations

import importlib.util
import sys
import time

import pytest

from tests.processes import ROOT, process_env
from tests.waiting import wait_until

# Exits with code 3 the first `crashes` times it runs (counted in a file), then stays up.
CRASH_THEN_RUN = """
import pathlib, sys, time
counter = pathlib.Path(sys.argv[1])
runs = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(runs + 1))
if runs < int(sys.argv[2]):
    sys.exit(3)
time.sleep(120)
"""


@pytest.fixture(scope="module")
def run():
    """scripts/run.py as a module."""
    spec = importlib.util.spec_from_file_location("make_run_script", ROOT / "scripts" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def supervise(run, tmp_path):
    """Make a Supervised child that crashes `crashes` times; all are stopped at the end."""
    made = []

    def make(name: str, crashes: int, *, restart: bool = True):
        counter = tmp_path / f"{name}-runs"
        cmd = [sys.executable, "-c", CRASH_THEN_RUN, str(counter), str(crashes)]
        supervised = run.Supervised(name, cmd, dict(process_env()), restart=restart)
        # The child rewrites the file: read mid-write, it is empty (count that as not yet).
        supervised.runs = lambda: int(counter.read_text() or 0) if counter.exists() else 0
        made.append(supervised)
        supervised.start()
        return supervised

    yield make
    for supervised in made:
        supervised.terminate()
        supervised.wait(10)


def drive(supervised, condition, timeout_s: float = 30) -> None:
    """Run the supervisor's checks (as its main loop does) until `condition` holds."""

    def step():
        assert supervised.check(time.monotonic()), f"{supervised.name} is gone for good"
        return condition()

    wait_until(step, timeout_s=timeout_s, message=f"{supervised.name} under supervision")


def up_after(supervised, runs: int):
    return lambda: supervised.runs() == runs and supervised.proc.poll() is None


def test_a_worker_that_exits_is_restarted_with_a_growing_delay(run, supervise, capsys, monkeypatch):
    monkeypatch.setattr(run, "RESTART_BACKOFF_S", (0.1, 0.2, 0.4))
    worker = supervise("worker", crashes=3)
    drive(worker, up_after(worker, 4))
    lines = [line for line in capsys.readouterr().out.splitlines() if "exited" in line]
    assert lines == [
        "[make run] worker exited with code 3; restarting it in 0.1 s",
        "[make run] worker exited with code 3; restarting it in 0.2 s",
        "[make run] worker exited with code 3; restarting it in 0.4 s",
    ]


def test_the_delay_starts_over_after_a_stable_run(run, supervise, capsys, monkeypatch):
    monkeypatch.setattr(run, "RESTART_BACKOFF_S", (0.1, 30))
    monkeypatch.setattr(run, "STABLE_AFTER_S", 0.0)  # every run counts as a stable one
    beat = supervise("beat", crashes=2)
    drive(beat, up_after(beat, 3))
    assert capsys.readouterr().out.count("beat exited with code 3; restarting it in 0.1 s") == 2


def test_web_is_not_restarted(supervise, capsys):
    web = supervise("web", crashes=1, restart=False)
    wait_until(lambda: web.proc.poll() is not None, timeout_s=30, message="web exiting")
    assert web.check(time.monotonic()) is False
    assert web.runs() == 1
    assert "[make run] web exited with code 3" in capsys.readouterr().out


def test_a_child_stopped_on_purpose_stays_stopped(supervise):
    worker = supervise("worker", crashes=0)
    wait_until(lambda: worker.runs() == 1, timeout_s=30, message="the worker running")
    worker.terminate()  # Ctrl-C
    worker.wait(10)
    assert worker.check(time.monotonic()) is True
    assert worker.restart_at is None
    assert worker.proc.returncode == -15
    assert worker.runs() == 1
