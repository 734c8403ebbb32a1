"""Real Celery worker and beat processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connections

ROOT = Path(__file__).resolve().parent.parent


def database_url(alias: str = "default") -> str:
    """A URL for the test database `alias` this process uses (workers must use the same one)."""
    conf = connections[alias].settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    user = conf.get("USER") or "postgres"
    return f"postgres://{user}@{conf['HOST']}:{conf['PORT']}/{conf['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    """Environment for a child process of the test run."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url(),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if "events" in connections:
        # The spare alias of tests/settings.py; a test that uses it sets EVENTING_TEST_DATABASE.
        env["EVENTING_TEST_EVENTS_DATABASE_URL"] = database_url("events")
    env.update(extra)
    return env


class CeleryProcess:
    """`celery worker` (optionally with embedded beat) or `celery beat`, started and stopped."""

    # Every started process still alive, so fault tests can park the session's worker.
    running: set[CeleryProcess] = set()

    def __init__(
        self,
        *,
        kind: str = "worker",
        beat: bool = True,
        pool: str = "threads",
        concurrency: int = 8,
        env: dict[str, str] | None = None,
        name: str = "w1",
        queues: str = "",
    ) -> None:
        self.kind, self.beat, self.pool, self.concurrency = kind, beat, pool, concurrency
        self.extra_env = env or {}
        self.name = name
        self.queues = queues
        self.log_path = Path(tempfile.mkstemp(prefix=f"celery-{name}-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None
        self.log_offset = 0  # where the current run's output starts in the log

    def command(self) -> list[str]:
        base = [sys.executable, "-m", "celery", "-A", "config"]
        if self.kind == "beat":
            schedule = tempfile.mktemp(prefix="beat-schedule-")
            return [*base, "beat", "-l", "info", "-s", schedule]
        cmd = [
            *base,
            "worker",
            "-l",
            "info",
            "-P",
            self.pool,
            "-c",
            str(self.concurrency),
            "-n",
            f"{self.name}@%h",
            "--without-mingle",
            "--without-gossip",
        ]
        if self.queues:
            cmd += ["-Q", self.queues]
        if self.beat:
            cmd += ["-B", "-s", tempfile.mktemp(prefix="beat-schedule-")]
        return cmd

    def start(self) -> CeleryProcess:
        """Start the process and wait until it is ready."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> CeleryProcess:
        """Start the process without waiting (start_all() waits for several at once)."""
        # A restarted process appends to its log: look for "ready" only in the new part.
        self.log_offset = self.log_path.stat().st_size
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=process_env(**self.extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        CeleryProcess.running.add(self)
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait for the worker's "ready" line (or beat's start line)."""
        marker = b"beat: Starting" if self.kind == "beat" else b"ready."
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if marker in self.log_path.read_bytes()[self.log_offset :]:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery {self.kind} exited:\n{self.tail()}")
            time.sleep(0.1)
        raise RuntimeError(f"celery {self.kind} not ready after {timeout_s} s:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log(self) -> str:
        """Everything the current run wrote (search this, not a tail: a burst logs thousands)."""
        return self.log_path.read_bytes()[self.log_offset :].decode(errors="replace")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        """Send `sig` to the worker's whole process group."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it hangs."""
        if not self.proc or self.proc.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        CeleryProcess.running.discard(self)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait(10)
        CeleryProcess.running.discard(self)


def purge_broker() -> None:
    """Drop every queued message (messages of earlier tests must not leak into the next)."""
    from config.celery import app

    with app.connection_for_write() as conn:
        app.control.purge(connection=conn)


def start_all(processes: list[CeleryProcess]) -> list[CeleryProcess]:
    """Start several processes side by side: they get ready in the time of the slowest."""
    for process in processes:
        process.launch()
    for process in processes:
        process.wait_ready()
    return processes


def stop_all(processes: list[CeleryProcess], timeout_s: float = 30.0) -> None:
    """Warm-shut several processes down side by side (SIGTERM to each, then wait for each)."""
    running = [p for p in processes if p.proc and p.proc.poll() is None]
    for process in running:
        process.signal(signal.SIGTERM)
    for process in running:
        try:
            process.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
        CeleryProcess.running.discard(process)


@contextmanager
def workers_parked(before_restart: Callable[[], None] | None = None) -> Iterator[None]:
    """Stop every running Celery process (the session worker would compete for the test's
    messages) and purge the broker; afterwards purge again and start them again.

    `before_restart` runs first on the way out (e.g. bring back a broker a test stopped).
    """
    parked = [p for p in CeleryProcess.running if p.proc and p.proc.poll() is None]
    stop_all(parked)
    purge_broker()
    try:
        yield
    finally:
        if before_restart is not None:
            before_restart()
        purge_broker()
        start_all(parked)


def host_worker(celery: list[str], host: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """The host project's worker with embedded beat (`celery` is how to run Celery there), its
    output in `log`; stop it with os.killpg(worker.pid, SIGTERM)."""
    with log.open("wb") as output:  # the worker holds its own copy of the file
        return subprocess.Popen(
            [
                *celery,
                "-A",
                "hostsite",
                "worker",
                "-B",
                "-P",
                "threads",
                "-c",
                "4",
                "-l",
                "info",
                "-s",
                str(log.with_name("beat-schedule")),
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=host,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
