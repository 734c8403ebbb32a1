"""`make run`: migrate, ensure an admin user, then serve web + worker + beat on one machine.

Everything runs on the embedded defaults (a SQLite file and kombu's filesystem broker under
var/) unless DATABASE_URL / CELERY_BROKER_URL say otherwise. Ctrl-C stops all three.

A worker or beat that exits on its own is started again after a growing delay (1 s, 2 s, 4 s …
30 s; back to 1 s once it has run a minute), with a line saying so: nothing delivers while no
worker runs, and production supervisors (compose's `restart:`, systemd, Kubernetes) do the
same. Web exiting stops everything (a port in use, a broken setting: restarting would not help).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A thread pool keeps many slow webhooks in flight from one process (see docs/benchmarks.md).
WORKER_POOL = os.environ.get("EVENTING_WORKER_POOL", "threads")
WORKER_CONCURRENCY = os.environ.get("EVENTING_WORKER_CONCURRENCY", "32")
# Delays before restarting a process that keeps exiting; the last one repeats.
RESTART_BACKOFF_S = (1, 2, 4, 8, 16, 30)
# A process that ran this long before exiting counts as healthy: its next delay is the first.
STABLE_AFTER_S = 60.0
# How long start-up may take before the banner is printed again anyway.
SETTLE_TIMEOUT_S = 90.0


def log(line: str) -> None:
    """A line of the supervisor itself (among the children's output)."""
    print(f"[make run] {line}", flush=True)


class Supervised:
    """A child process; restarted with a growing delay when it exits unless `restart` is off."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], *, restart: bool) -> None:
        self.name, self.cmd, self.env, self.restart = name, cmd, env, restart
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.quick_exits = 0  # exits in a row after less than STABLE_AFTER_S
        self.restart_at: float | None = None
        self.stopped = False  # terminated on purpose: never restarted

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env)
        self.started_at = time.monotonic()
        log(f"{self.name} started (pid {self.proc.pid})")

    def check(self, now: float) -> bool:
        """Restart the process if it exited (once its delay is over); False if it is gone for
        good (it exited and is not restarted)."""
        if self.stopped:
            return True
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restart_at = None
                self.start()
            return True
        code = self.proc.poll()
        if code is None:
            return True
        if not self.restart:
            log(f"{self.name} exited with code {code}")
            return False
        if now - self.started_at >= STABLE_AFTER_S:
            self.quick_exits = 0
        delay = RESTART_BACKOFF_S[min(self.quick_exits, len(RESTART_BACKOFF_S) - 1)]
        self.quick_exits += 1
        log(f"{self.name} exited with code {code}; restarting it in {delay} s")
        self.restart_at = now + delay
        return True

    def terminate(self) -> None:
        """SIGTERM (warm shutdown) if running; never restarted afterwards."""
        self.stopped = True
        self.restart_at = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float) -> None:
        if not self.proc:
            return
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def manage(*args: str, env: dict[str, str]) -> None:
    """Run a manage.py command, failing loudly."""
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def admin_password(var_dir: Path) -> str:
    """The admin password: from EVENTING_ADMIN_PASSWORD, or generated once and kept in var/."""
    if os.environ.get("EVENTING_ADMIN_PASSWORD"):
        return os.environ["EVENTING_ADMIN_PASSWORD"]
    path = var_dir / "admin-password.txt"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    return path.read_text().strip()


def ensure_local_secrets(var_dir: Path) -> None:
    """Random webhook-signing and client secrets, generated once into var/, which
    config/settings.py reads when EVENTING_SECRETS / EVENTING_CLIENT_SECRETS are unset (so
    local runs never use the public development secret, refused with DEBUG off)."""
    for name in ("signing-secret.txt", "client-secret.txt"):
        path = var_dir / name
        if not path.exists():
            # Created readable by the owner only, before anything is written into it.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))


def ensure_development_data(password: str, env: dict[str, str]) -> None:
    """Create the superuser `admin` if no user has that name yet (keeps a changed password),
    and the `default` event type with the `authenticated` queue rule if there is none (keeps a
    changed rule), so the quickstart's custom event can be queued over HTTP with a token."""
    code = (
        "from django.contrib.auth import get_user_model as g;U=g();"
        "U.objects.filter(username='admin').exists() or "
        f"U.objects.create_superuser('admin', 'admin@localhost', {password!r});"
        "from triggers.models import EventType as E;"
        "E.objects.get_or_create(name='default', defaults={'queue_rule': 'authenticated', "
        "'description': 'Created by make run: any authenticated caller may queue any type.'})"
    )
    manage("shell", "-c", code, env=env)


def var_path(var_dir: Path, name: str) -> str:
    """How the banner names a file of var/ (relative to the project folder when inside)."""
    path = var_dir / name
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def banner(url: str, password: str, var_dir: Path) -> str:
    """What `make run` prints: where to log in, where the secrets are, what to try first."""
    if os.environ.get("EVENTING_ADMIN_PASSWORD"):
        kept = "from EVENTING_ADMIN_PASSWORD"
    else:
        kept = f"kept in {var_path(var_dir, 'admin-password.txt')}"
    signing = (
        "EVENTING_SECRETS"
        if os.environ.get("EVENTING_SECRETS")
        else var_path(var_dir, "signing-secret.txt")
    )
    client = (
        "EVENTING_CLIENT_SECRETS"
        if os.environ.get("EVENTING_CLIENT_SECRETS")
        else var_path(var_dir, "client-secret.txt")
    )
    python = python_cmd()
    return (
        f"\nMission Control: {url}\n  login: admin / {password}  ({kept})\n"
        f"  secrets: {signing} signs webhooks, {client} verifies API bearer tokens;\n"
        f"    an API token for admin: `{python} manage.py eventing_token admin`\n"
        f"  try a receiver: in another terminal run `{python} manage.py eventing_listen "
        "--port 9000`,\n  then add a trigger with URL http://127.0.0.1:9000/ and save a row.\n"
        "  Ctrl-C stops web, worker and beat.\n"
    )


class Settling:
    """Whether start-up has settled: `url` answered 200, or the deadline passed."""

    def __init__(self, url: str, deadline: float) -> None:
        self.url, self.deadline = url, deadline
        self.pending = True
        self.next_probe = 0.0

    def done(self, now: float) -> bool:
        """Probe `url` (at most once a second); True once, when start-up has settled."""
        if now < self.next_probe:
            return False
        self.next_probe = now + 1.0
        try:
            with urllib.request.urlopen(self.url, timeout=1) as reply:
                answered = reply.status == 200
        except (OSError, ValueError):  # refused, an error status (HTTPError), timeout: not yet
            answered = False
        if answered or now >= self.deadline:
            self.pending = False
            return True
        return False


def python_cmd() -> str:
    """How to call this Python from the project folder (the venv's, relative when inside)."""
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(ROOT))
    except ValueError:
        return str(exe)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
    args = parser.parse_args()

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Local receivers (and `manage.py eventing_listen`) live on loopback.
    env.setdefault("EVENTING_ALLOWED_NETWORKS", "127.0.0.0/8")
    env["PYTHONUNBUFFERED"] = "1"
    var_dir = Path(env.get("EVENTING_VAR_DIR", ROOT / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)

    ensure_local_secrets(var_dir)
    manage("migrate", "--no-input", "-v", "0", env=env)
    # The shared cache's table when there is no Redis (API throttles count there).
    manage("createcachetable", env=env)
    password = admin_password(var_dir)
    ensure_development_data(password, env)

    celery = [sys.executable, "-m", "celery", "-A", "config"]
    commands = {
        "web": [
            sys.executable,
            "manage.py",
            "runserver",
            "--noreload",
            "--insecure",
            f"{args.host}:{args.port}",
        ],
        "worker": [
            *celery,
            "worker",
            "-l",
            "info",
            "-P",
            WORKER_POOL,
            "-c",
            WORKER_CONCURRENCY,
            "-n",
            "worker@%h",
        ],
        "beat": [*celery, "beat", "-l", "info", "-s", str(var_dir / "celerybeat-schedule")],
    }
    children = [Supervised(name, cmd, env, restart=name != "web") for name, cmd in commands.items()]
    for child in children:
        child.start()
    base = f"http://{args.host}:{args.port}"
    text = banner(f"{base}/mission-control/", password, var_dir)
    print(text, flush=True)
    # The children's start-up lines bury the banner: say it again once the login page answers
    # (worker and beat start beside web), or after SETTLE_TIMEOUT_S anyway. Not /healthz: each
    # 503 before the first sweep would be an ERROR line of its own.
    settle = Settling(f"{base}/mission-control/login/", time.monotonic() + SETTLE_TIMEOUT_S)

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True
        for child in children:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping:
            # Every child is checked (and restarted) each round; any gone for good ends the run.
            running = [child.check(time.monotonic()) for child in children]
            if not all(running):
                break
            if settle.pending and settle.done(time.monotonic()):
                print(f"[make run] ready.{text}", flush=True)
            time.sleep(0.5)  # the supervisor's polling period, not synchronisation
    finally:
        stop()
        for child in children:
            child.wait(20)
    failed = [c.name for c in children if c.proc and c.proc.returncode not in (0, -15, None)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
