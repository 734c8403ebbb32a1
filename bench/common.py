"""Benchmark plumbing: Django setup, receivers, workers, statistics and result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def setup_django() -> None:
    """Configure Django with bench.settings and migrate the (throwaway) database."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def setup_django_on_fresh_database(name: str, *, keep: bool = False) -> None:
    """Configure Django (config.settings) on a new database `name` of DATABASE_URL's server
    (dropped first, unless `keep` and it exists), in a throwaway var folder; for benchmarks
    that build their own data."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg2

    parts = urlsplit(os.environ.get("DATABASE_URL", ""))
    if parts.scheme not in ("postgres", "postgresql"):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL server (see `python -m tests.stack`).")
    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        exists = cursor.fetchone() is not None
        if not (keep and exists):
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
            cursor.execute(f"CREATE DATABASE {name}")
    admin.close()
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("EVENTING_VAR_DIR", tempfile.mkdtemp(prefix=f"{name}-"))
    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()


def start_receiver(delay_ms: float = 0) -> tuple[subprocess.Popen, int]:
    """Start bench.receiver in its own process; returns (process, port)."""
    port_file = Path(tempfile.mktemp(prefix="bench-port-"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.receiver",
            "--delay-ms",
            str(delay_ms),
            "--port-file",
            str(port_file),
        ],
        cwd=ROOT,
    )
    deadline = time.monotonic() + 20
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline:
            raise RuntimeError("receiver did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def receiver_count(port: int) -> int:
    """How many webhooks the receiver got."""
    import requests

    return requests.get(f"http://127.0.0.1:{port}/count", timeout=10).json()["count"]


def receiver_records(port: int) -> list[tuple[str, float, float | None]]:
    """(webhook-id, arrival, sent_at) for every webhook the receiver got."""
    import requests

    return requests.get(f"http://127.0.0.1:{port}/records", timeout=60).json()


def wait_count(port: int, count: int, timeout_s: float) -> float:
    """Wait until the receiver has `count` webhooks; returns when (time.time())."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = receiver_count(port)
        if got >= count:
            return time.time()
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {got} of {count} webhooks after {timeout_s} s")
        time.sleep(0.05)


def worker(
    pool: str = "threads", concurrency: int = 16, beat: bool = True, name: str = "b1", **env: str
):
    """A started Celery worker process for the bench settings."""
    from tests.processes import CeleryProcess

    return CeleryProcess(
        pool=pool,
        concurrency=concurrency,
        beat=beat,
        name=name,
        env={"DJANGO_SETTINGS_MODULE": "bench.settings", **env},
    ).start()


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> dict:
    """Where the numbers came from."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "database": os.environ.get("DATABASE_URL", "sqlite").split("://")[0],
        "broker": os.environ.get("CELERY_BROKER_URL", "filesystem").split("://")[0],
    }


def write_result(name: str, data: dict) -> Path:
    """Write bench/results/<name>.json and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    return path


def reset_events() -> None:
    """Empty the event tables and triggers between scenarios."""
    from eventing.models import EventLog, InvocationLog
    from tests.processes import purge_broker
    from triggers.models import Trigger

    InvocationLog.objects.all().delete()
    EventLog.objects.all().delete()
    Trigger.objects.all().delete()
    purge_broker()
    analyze()


def analyze() -> None:
    """Refresh the planner's statistics of the event tables, as autovacuum keeps them in
    production. Right after a bulk fill the planner has none and may walk an index of the whole
    table for a claim by id; autovacuum would only catch up a minute later, mid-benchmark."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE event_logs, invocation_logs")
