"""A newcomer's first run, scripted: a fresh clone, `make run`, the quickstart's custom event
queued over HTTP with `curl` and an `eventing_token` JWT, and a file saved through the default
storage; both arrive as webhooks at a receiver on loopback.

It runs once, in `make test`'s sqlite stage (marker `newcomer`), reusing this virtualenv.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.docblocks import the_block
from tests.stack import free_port
from tests.waiting import wait_until

pytestmark = [pytest.mark.newcomer, pytest.mark.slow]

QUICKSTART = "docs/quickstart.md"


def newcomer_env() -> dict[str, str]:
    """A shell's environment: nothing pointing at the test settings, databases or brokers."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CELERY_", "EVENTING_", "DATABASE_URL", "PYTHON"))
    }


def bash(code: str, *, cwd: Path, env: dict[str, str]) -> str:
    """Run a block of the docs as a reader pastes it; its output (fails with it otherwise)."""
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{code}\n{result.stdout}{result.stderr}"
    return result.stdout


class MakeRun:
    """`make run` in the background, its output in a file; stopped as a process group."""

    def __init__(self, clone: Path, port: int, log: Path, env: dict[str, str]) -> None:
        self.log = log
        self.port = port
        self.proc = subprocess.Popen(
            ["make", "run", f"VENV={sys.prefix}", f"PORT={port}"],
            cwd=clone,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def ready(self) -> bool:
        """The banner was printed again: the login page answers."""
        if self.proc.poll() is not None:
            raise AssertionError(f"make run exited:\n{self.output()[-3000:]}")
        return "[make run] ready." in self.output()

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def test_a_newcomer_queues_a_custom_event_and_saves_a_file(fresh_clone, tmp_path, receiver):
    # The docs' commands say `.venv/bin/python`: the clone's .venv is this virtualenv.
    (fresh_clone / ".venv").symlink_to(sys.prefix)
    env = newcomer_env()
    server = MakeRun(fresh_clone, free_port(), tmp_path / "make-run.log", env)
    try:
        wait_until(server.ready, timeout_s=240, interval_s=0.5, message="make run's banner")
        base = f"http://127.0.0.1:{server.port}"
        printed = server.output()
        assert printed.count(f"Mission Control: {base}/mission-control/") == 2
        assert "var/client-secret.txt verifies API bearer tokens" in printed

        # Mission Control's two triggers, added through the API with the admin's token.
        token = bash(".venv/bin/python manage.py eventing_token admin", cwd=fresh_clone, env=env)
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token.strip()}"
        for trigger in (
            {"name": "greetings", "type": "hello", "url": receiver.url("/ok/greetings")},
            {
                "name": "uploads",
                "type": "FILE_CREATE",
                "source": "default",
                "url": receiver.url("/ok/uploads"),
            },
            # CRON triggers make beat check for due ticks every 5 s: the console stays quiet.
            {
                "name": "every_minute",
                "type": "CRON",
                "cron_expression": "* * * * *",
                "url": receiver.url("/ok/every-minute"),
            },
            {
                "name": "new_year",
                "type": "CRON",
                "cron_expression": "0 0 1 1 *",
                "url": receiver.url("/ok/new-year"),
            },
        ):
            created = api.post(f"{base}/api/eventing/triggers/", json=trigger, timeout=30)
            assert created.status_code == 201, created.text

        # Quickstart step 5, as written (but on this run's port).
        curl = the_block(QUICKSTART, "curl").code.replace(
            "127.0.0.1:8000", f"127.0.0.1:{server.port}"
        )
        answer = bash(curl, cwd=fresh_clone, env=env)
        assert '"created":true' in answer.replace(" ", ""), answer
        [greeting] = receiver.wait_for("/ok/greetings", timeout_s=60)
        assert greeting.json()["type"] == "hello"
        assert greeting.json()["data"] == {"name": "Ada"}

        # Quickstart step 6, as written.
        bash(the_block(QUICKSTART, "default_storage.save").code, cwd=fresh_clone, env=env)
        [upload] = receiver.wait_for("/ok/uploads", timeout_s=60)
        assert upload.json()["type"] == "FILE_CREATE"
        assert upload.json()["data"]["storage"] == "default"
        assert upload.json()["data"]["name"] == "hello.txt"
        assert (fresh_clone / "var" / "media" / "hello.txt").read_bytes() == b"Hello, Ada"

        # A quiet console: beat sent sweeps all along, and none of them said so at INFO.
        wait_until(
            lambda: requests.get(f"{base}/healthz", timeout=10).status_code == 200,
            timeout_s=60,
            message="a sweep (healthz 200)",
        )
        quiet = server.output()
        assert "Task eventing.sweep[" not in quiet  # received / succeeded
        assert "Sending due task eventing-sweep" not in quiet
        assert "No hostname was supplied" not in quiet

        # Once running, with CRON triggers, under 10 lines a minute: counted from one tick of
        # every_minute to the next (a minute apart; each prints its own delivery's lines).
        ticks = len(receiver.on("/ok/every-minute"))
        receiver.wait_for("/ok/every-minute", count=ticks + 1, timeout_s=90)
        start = len(server.output().splitlines())
        receiver.wait_for("/ok/every-minute", count=ticks + 2, timeout_s=90)
        minute = server.output().splitlines()[start:]
        assert len(minute) < 10, "a minute of make run's console:\n" + "\n".join(minute)
        assert "Sending due task eventing-cron" not in server.output()
        assert "Task eventing.cron[" not in server.output()
        assert not receiver.on("/ok/new-year")
    finally:
        server.stop()
