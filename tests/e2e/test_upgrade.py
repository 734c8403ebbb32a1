"""Upgrading a project from the previous release to this checkout loses and repeats nothing.

The previous release (git tag PREVIOUS, taken with `git archive`) runs its own host project
(tests/hostproject as that release had it, settings as its docs/integration.md said) until the
database holds a delivered, a failed, a retrying, a pending and a scheduled event. Then this
checkout's code takes over the same database and broker folder: migrate, check, a real worker
with beat, a loopback receiver. Every event that was not finished is delivered exactly once;
finished ones keep their attempts; settings that name the paths moved in 0.1.0 still work and
warn.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.processes import ROOT, host_worker
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PREVIOUS = "v0.1.0"
# The same release by its commit: a clone made without tags still has it in its history.
PREVIOUS_COMMIT = "4a01db77f66c474e7c311afee02369d5856637f7"
SECRET = "upgrade-test-secret-0123456789abcdef0123456789"
SCHEDULED_DELAY_S = 20  # long enough to still be ahead when the new worker starts

# Paths (receiver side) of the trigger each kind of event belongs to.
PATHS = {
    "done": "/ok/done",
    "failed": "/status/400",  # not retried under the default policy: failed after one attempt
    "retrying": "/flaky/1",  # 500 once, then 200
    "pending": "/ok/pending",
    "scheduled": "/ok/scheduled",
}

# Run by the previous release: one book, one event per trigger, three of them attempted now.
SETUP = """
import json
from eventing.delivery.deliver import deliver_event
from eventing.models import EventLog
from library.models import Book
from triggers.models import Trigger

paths = json.loads({paths!r})
for name, path in paths.items():
    Trigger.objects.create(
        name=name, type="DB_INSERT", source="library.Book", url={base!r} + path,
        backoff_base_s=1, backoff_max_s=2,
        delay_s={delay} if name == "scheduled" else 0,
    )
Book.objects.create(title="Dune", author="Frank Herbert", price="9.99")
for name in ("done", "failed", "retrying"):
    deliver_event(EventLog.objects.get(trigger_name=name).pk)
"""

# Run by either version: every event and its attempts, by trigger name.
SNAPSHOT = """
import json
from eventing.models import EventLog
print(json.dumps({
    e.trigger_name: {
        "id": str(e.pk),
        "status": e.status,
        "attempts": e.attempts,
        "invocations": [
            [i.attempt, i.response_status_code, i.succeeded]
            for i in e.invocations.order_by("attempt")
        ],
    }
    for e in EventLog.objects.all()
}))
"""

# Run by this checkout: wait until no event is left to deliver (the worker finishes a row just
# after its POST), then snapshot.
SETTLED = (
    """
import time
from eventing.models import EventLog
deadline = time.monotonic() + 60
while time.monotonic() < deadline and EventLog.objects.filter(
    status__in=("staged", "processing")
).exists():
    time.sleep(0.2)
"""
    + SNAPSHOT
)

# The pre-0.1.0 paths of the old docs' settings, as projects that followed them still have.
OLD_PATHS = {
    "eventing.dispatch.beat import": "eventing.beat import",
    '"eventing.dispatch.broker:': '"eventing.broker:',
}
OLD_LOGGING = """
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"event_context": {"()": "eventing.logs.EventContextFilter"}},
    "formatters": {"kv": {"()": "eventing.logs.KeyValueFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "kv",
                             "filters": ["event_context"]}},
    "loggers": {"eventing": {"handlers": ["console"], "level": "WARNING"}},
}
"""


def previous_release(into: Path) -> Path:
    """This repository's tree at PREVIOUS, extracted into `into`.

    A clone without that history (shallow, or a tree without .git) cannot show an upgrade
    from it: the test skips and says why rather than failing on how the tree was copied.
    """
    revision = next((rev for rev in (PREVIOUS, PREVIOUS_COMMIT) if has_commit(rev)), None)
    if revision is None:
        pytest.skip(
            f"the previous release ({PREVIOUS}, {PREVIOUS_COMMIT[:7]}) is not in this clone"
        )
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def has_commit(revision: str) -> bool:
    """Whether this clone holds `revision` as a commit."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "-q", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    return found.returncode == 0


class Project:
    """The host project, run with one version of the code on PYTHONPATH."""

    def __init__(self, host: Path, data: Path) -> None:
        self.host = host
        self.data = data

    def env(self, code: Path, settings: str = "hostsite.settings") -> dict[str, str]:
        """An environment that runs `code`'s eventing and nothing of the caller's settings."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "PYTHON", "CELERY_", "EVENTING_", "DATABASE_URL"))
        }
        env.update(
            PYTHONPATH=str(code),
            DJANGO_SETTINGS_MODULE=settings,
            HOST_DATA_DIR=str(self.data),
            HOST_EVENTING_SECRET=SECRET,
        )
        return env

    def manage(self, code: Path, *args: str, settings: str = "hostsite.settings", flags=()):
        """`python manage.py …` with `code`; fails the test with its output on an error."""
        result = subprocess.run(
            [sys.executable, *flags, "manage.py", *args],
            cwd=self.host,
            env=self.env(code, settings),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            pytest.fail(f"manage.py {args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr}")
        return result

    def shell(self, code: Path, script: str) -> dict:
        """Run `script` in `manage.py shell`; its last line of output, read as JSON."""
        out = self.manage(code, "shell", "-c", script).stdout
        lines = [line for line in out.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


@pytest.fixture
def project(tmp_path) -> tuple[Project, Path]:
    """The previous release's host project, and the release's code."""
    old = previous_release(tmp_path / "previous")
    host = tmp_path / "host"
    shutil.copytree(old / "tests" / "hostproject", host, ignore=shutil.ignore_patterns("data"))
    return Project(host, tmp_path / "data"), old


def test_upgrade_from_the_previous_release_delivers_what_was_pending_once(
    project, receiver, tmp_path
):
    host, old = project
    new = ROOT

    # The previous release, as its users ran it.
    host.manage(old, "migrate", "--no-input", "-v", "0")
    host.shell(
        old, SETUP.format(paths=json.dumps(PATHS), base=receiver.url(""), delay=SCHEDULED_DELAY_S)
    )
    before = host.shell(old, SNAPSHOT)
    assert {name: event["status"] for name, event in before.items()} == {
        "done": "processed",
        "failed": "failed",
        "retrying": "staged",
        "pending": "staged",
        "scheduled": "staged",
    }
    assert before["retrying"]["attempts"] == 1
    assert before["scheduled"]["attempts"] == before["pending"]["attempts"] == 0
    delivered_before = {path: len(receiver.on(path)) for path in PATHS.values()}
    assert delivered_before == {
        "/ok/done": 1,
        "/status/400": 1,
        "/flaky/1": 1,
        "/ok/pending": 0,
        "/ok/scheduled": 0,
    }

    # This checkout on the same database, broker folder and settings.
    host.manage(new, "migrate", "--no-input", "-v", "0")
    checked = host.manage(new, "check")
    assert "System check identified no issues" in checked.stdout, checked.stdout + checked.stderr
    log_path = tmp_path / "worker.log"
    worker = host_worker([sys.executable, "-m", "celery"], host.host, host.env(new), log_path)
    try:
        wait_until(
            lambda: b"ready." in log_path.read_bytes() or worker.poll() is not None,
            timeout_s=60,
            message="the upgraded worker",
        )
        assert worker.poll() is None, log_path.read_text()
        for path in ("/ok/pending", "/ok/scheduled"):
            receiver.wait_for(path, timeout_s=SCHEDULED_DELAY_S + 60)
        receiver.wait_for("/flaky/1", count=2, timeout_s=60)
        after = host.shell(new, SETTLED)
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(30)

    # Every event that was not finished is delivered once; the finished ones are as they were.
    assert {path: len(receiver.on(path)) for path in PATHS.values()} == {
        "/ok/done": 1,
        "/status/400": 1,
        "/flaky/1": 2,
        "/ok/pending": 1,
        "/ok/scheduled": 1,
    }
    assert set(after) == set(before)
    assert {name: event["status"] for name, event in after.items()} == {
        "done": "processed",
        "failed": "failed",
        "retrying": "processed",
        "pending": "processed",
        "scheduled": "processed",
    }
    for name in ("done", "failed"):
        assert after[name] == before[name], f"the {name} event changed on upgrade"
    assert after["retrying"]["invocations"][0] == before["retrying"]["invocations"][0]
    assert [i[2] for i in after["retrying"]["invocations"]] == [False, True]
    for name in ("pending", "scheduled"):
        assert after[name]["attempts"] == 1
        assert after[name]["id"] == before[name]["id"]
    body = receiver.on("/ok/pending")[0].json()
    assert body["data"]["new"]["title"] == "Dune"


def test_settings_with_the_paths_of_the_old_docs_work_and_warn(project):
    host, _ = project
    settings = (host.host / "hostsite" / "settings.py").read_text()
    for current, old_path in OLD_PATHS.items():
        assert current in settings, f"the previous release's settings no longer say {current}"
        settings = settings.replace(current, old_path)
    (host.host / "hostsite" / "settings_old_paths.py").write_text(settings + OLD_LOGGING)

    host.manage(ROOT, "migrate", "--no-input", "-v", "0")
    checked = host.manage(
        ROOT, "check", settings="hostsite.settings_old_paths", flags=("-W", "default")
    )
    assert "System check identified no issues" in checked.stdout
    for moved in (
        "eventing.beat.beat_schedule moved to eventing.dispatch.beat.beat_schedule",
        "eventing.logs.KeyValueFormatter moved to eventing.ops.logs.KeyValueFormatter",
        "eventing.logs.EventContextFilter moved to eventing.ops.logs.EventContextFilter",
    ):
        assert moved in checked.stderr, checked.stderr
    transport = host.manage(
        ROOT,
        "shell",
        "-c",
        "from hostsite.celery import app; print(type(app.connection().transport).__module__)",
        settings="hostsite.settings_old_paths",
        flags=("-W", "default"),
    )
    assert transport.stdout.split()[-1] == "eventing.dispatch.broker"
    assert "eventing.broker.FilesystemTransport moved to" in transport.stderr
