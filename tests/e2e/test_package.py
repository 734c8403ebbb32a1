"""The distribution: a built wheel holds the three apps with their templates and static files,
and a separate host project that installs it (following docs/integration.md) gets webhooks for
its own model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jwt
import pytest
from standardwebhooks import Webhook

from tests.processes import ROOT, host_worker
from tests.waiting import wait_until

# One xdist worker runs the whole file: the wheel (a module fixture) is built once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("package")]

APPS = ("eventing", "triggers", "mission_control")
HOST = ROOT / "tests" / "hostproject"
HOST_SECRET = "host-secret-for-the-package-test-0123456789"
# Files added to the copy of the tree before building: packaging must pick up any new one.
PROBES = (
    "mission_control/templates/mission_control/zz_package_probe.html",
    "eventing/static/eventing/zz_package_probe.css",
)
IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "var",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    "tests",
    "bench",
    "docs",
    "docker",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
)


def run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    """Run a command; fail the test with its output when it fails."""
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without anything that points Python or Django at this repo."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DJANGO_", "PYTHON", "VIRTUAL_ENV", "DATABASE_URL", "CELERY_", "EVENTING_")
        )
    }
    env.update(extra)
    return env


def app_files(root: Path) -> set[str]:
    """Every file of the three apps (code, migrations, templates, static), relative to `root`."""
    return {
        str(path.relative_to(root))
        for app in APPS
        for path in (root / app).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the tree (plus probe files), as `pip wheel .` builds it."""
    work = tmp_path_factory.mktemp("package")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=IGNORED)
    for probe in PROBES:
        (source / probe).parent.mkdir(parents=True, exist_ok=True)
        (source / probe).write_text("/* probe */\n")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(work / "dist"),
            str(source),
        ],
        cwd=work,
        env=clean_env(),
    )
    (built,) = (work / "dist").glob("django_eventing-*.whl")
    built.with_suffix(".files").write_text("\n".join(sorted(app_files(source))))
    return built


def test_wheel_holds_the_apps_templates_and_static_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set(wheel.with_suffix(".files").read_text().split())
    assert set(PROBES) <= expected
    assert {
        "eventing/migrations/0001_initial.py",
        "triggers/migrations/0001_initial.py",
        "mission_control/__init__.py",
    } <= expected
    missing = expected - names
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert not any(name.startswith(("tests/", "config/", "docker/")) for name in names)


def test_host_project_gets_webhooks_for_its_own_model(wheel, tmp_path, receiver):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=clean_env())
    python = venv / "bin" / "python"
    run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)],
        cwd=tmp_path,
        env=clean_env(),
        timeout=600,
    )

    host = tmp_path / "host"
    shutil.copytree(HOST, host, ignore=shutil.ignore_patterns("__pycache__", "data"))
    env = clean_env(HOST_DATA_DIR=str(tmp_path / "data"), HOST_EVENTING_SECRET=HOST_SECRET)
    installed = run(
        [str(python), "-c", "import eventing; print(eventing.__file__)"], cwd=host, env=env
    )
    assert installed.startswith(str(venv)), installed  # the wheel, not this checkout

    run([str(python), "manage.py", "migrate", "--no-input", "-v", "0"], cwd=host, env=env)
    run([str(python), "manage.py", "check", "--fail-level", "ERROR"], cwd=host, env=env)
    secret = json.loads(
        run(
            [
                str(python),
                "manage.py",
                "shell",
                "-c",
                CREATE_TRIGGER.format(url=receiver.url("/ok/host")),
            ],
            cwd=host,
            env=env,
        ).splitlines()[-1]
    )["secret"]

    worker = host_worker([str(venv / "bin" / "celery")], host, env, tmp_path / "worker.log")
    try:
        wait_until(
            lambda: (
                b"ready." in (tmp_path / "worker.log").read_bytes() or worker.poll() is not None
            ),
            timeout_s=60,
            message="the host's worker",
        )
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        run([str(python), "manage.py", "shell", "-c", SAVE_A_BOOK], cwd=host, env=env)
        got = receiver.wait_for("/ok/host", timeout_s=60)[0]
        checks = json.loads(
            run(
                [str(python), "manage.py", "shell", "-c", AFTER_DELIVERY], cwd=host, env=env
            ).splitlines()[-1]
        )
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(30)

    body = got.json()
    assert body["type"] == "DB_INSERT"
    assert body["source"] == "hostsite"
    assert body["data"]["model"] == "library.Book"
    assert body["data"]["table"] == "library_book"
    assert body["data"]["new"]["title"] == "Dune"
    assert body["data"]["new"]["price"] == "9.99"
    token = got.headers["X-SC-Token"].removeprefix("Bearer ")
    assert jwt.decode(token, HOST_SECRET, algorithms=["HS256"])["id"] == "hostsite"
    Webhook(secret).verify(got.body, {k.lower(): v for k, v in got.headers.items()})
    assert checks["status"] == "processed"
    assert checks["healthz"] == 200
    assert checks["mission_control_login"] == 200
    assert checks["probe_static"], "static files of the wheel are not found by staticfiles"
    assert 'eventing_backlog{status="staged"} 0.0' in checks["metrics"]


CREATE_TRIGGER = """
import json
from triggers.models import Trigger
t = Trigger.objects.create(name="new_books", type="DB_INSERT", source="library.Book", url={url!r})
print(json.dumps({{"secret": t.signing_secret}}))
"""

SAVE_A_BOOK = """
from library.models import Book
Book.objects.create(title="Dune", author="Frank Herbert", price="9.99")
"""

AFTER_DELIVERY = """
import json, time
from django.contrib.staticfiles import finders
from django.test import Client
from eventing.models import EventLog, Heartbeat

deadline = time.monotonic() + 30
while time.monotonic() < deadline:  # the worker finishes the row just after the POST
    event = EventLog.objects.filter(trigger_name="new_books").first()
    if event and event.status == "processed" and Heartbeat.objects.filter(name="sweep").exists():
        break
    time.sleep(0.1)
client = Client()
print(json.dumps({
    "status": event.status if event else None,
    "healthz": client.get("/healthz").status_code,
    "mission_control_login": client.get("/mission-control/login/").status_code,
    "probe_static": bool(finders.find("eventing/zz_package_probe.css")),
    "metrics": client.get("/metrics").content.decode(),
}))
"""
