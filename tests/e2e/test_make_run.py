"""`make run` from a fresh clone serves Mission Control and delivers a webhook for a saved row."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.stack import free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

SAVE_A_ROW = """
from triggers.models import Trigger
from django.contrib.auth.models import User
Trigger.objects.create(name="new_users", type="DB_INSERT", source="auth.User", url={url!r})
User.objects.create(username="ada")
"""


def test_make_run_serves_mission_control_and_delivers(fresh_clone, tmp_path, receiver):
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    env["EVENTING_VAR_DIR"] = str(tmp_path / "var")
    venv = Path(sys.prefix)
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        ["make", "run", f"VENV={venv}", f"PORT={port}"],
        cwd=fresh_clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output = tmp_path / "run.log"
    try:
        login = f"http://127.0.0.1:{port}/mission-control/login/"

        def serving():
            if proc.poll() is not None:
                raise AssertionError(f"make run exited:\n{output.read_text()[-3000:]}")
            try:
                return requests.get(login, timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(serving, timeout_s=240, interval_s=0.5, message="Mission Control login page")
        page = requests.get(login, timeout=5).text
        assert "Mission Control" in page
        printed = output.read_text()
        assert f"http://127.0.0.1:{port}/mission-control/" in printed
        assert "login: admin / " in printed

        script = SAVE_A_ROW.format(url=receiver.url("/ok/make-run"))
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", script],
            cwd=fresh_clone,
            env={
                **env,
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "EVENTING_ALLOWED_NETWORKS": "127.0.0.0/8",
            },
            check=True,
        )
        got = receiver.wait_for("/ok/make-run", timeout_s=60)[0].json()
        assert got["type"] == "DB_INSERT"
        assert got["data"]["model"] == "auth.User"
        assert got["data"]["new"]["username"] == "ada"
        assert "password" not in got["data"]["new"]  # sensitive fields are left out
        restarted = crash_the_worker(output)
        # The restarted worker delivers: the next delivery is its own.
        see_a_delivery_with_eventing_listen(fresh_clone, env, printed, tmp_path)
        assert restarted.poll_alive(), "the restarted worker exited"
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert health.status_code == 200, health.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(tmp_path / "var", ignore_errors=True)


WORKER_STARTED_RE = re.compile(r"\[make run\] worker started \(pid (\d+)\)")


class Pid:
    """A process we did not start (a child of `make run`)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def poll_alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True


def crash_the_worker(output: Path) -> Pid:
    """SIGKILL `make run`'s worker; it is restarted (with a log line). The new worker."""
    first = int(WORKER_STARTED_RE.findall(output.read_text())[-1])
    os.kill(first, signal.SIGKILL)
    wait_until(
        lambda: "[make run] worker exited with code -9; restarting it in 1 s" in output.read_text(),
        timeout_s=30,
        message="the supervisor noticing the crash",
    )
    pids = wait_until(
        lambda: [int(p) for p in WORKER_STARTED_RE.findall(output.read_text()) if int(p) != first],
        timeout_s=30,
        message="the worker started again",
    )
    return Pid(pids[-1])


LISTEN_TRIGGER = """
from triggers.models import Trigger
from django.contrib.auth.models import Group
Trigger.objects.create(name="new_groups", type="DB_INSERT", source="auth.Group", url={url!r})
Group.objects.create(name="editors")
"""


def see_a_delivery_with_eventing_listen(clone: Path, env: dict, printed: str, tmp_path: Path):
    """Follow the hint `make run` prints: run eventing_listen, point a trigger at it."""
    assert "manage.py eventing_listen --port 9000" in printed
    assert "http://127.0.0.1:9000/" in printed
    port = free_port()
    env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "EVENTING_ALLOWED_NETWORKS": "127.0.0.0/8",
    }
    out = tmp_path / "listen.log"
    listen = subprocess.Popen(
        [sys.executable, "manage.py", "eventing_listen", "--port", str(port)],
        cwd=clone,
        env=env,
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: "Listening on" in out.read_text(), message="eventing_listen")
        script = LISTEN_TRIGGER.format(url=f"http://127.0.0.1:{port}/")
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", script], cwd=clone, env=env, check=True
        )
        wait_until(
            lambda: "webhook-signature verified" in out.read_text(),
            timeout_s=60,
            message=f"a verified delivery at eventing_listen:\n{out.read_text()}",
        )
        text = out.read_text()
        assert "DB_INSERT trigger=new_groups attempt=1" in text
        assert '"name": "editors"' in text
    finally:
        listen.terminate()
        listen.wait(10)
