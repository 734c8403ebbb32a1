"""Health of a deployment: the database and broker answer, the sweeper and a worker are recent.

The one health probe: /healthz, `manage.py check --deploy` (eventing.W002) and Mission Control's
dashboard all report these checks.

Workers prove they are alive with a heartbeat row (`worker:<hostname>` in eventing_heartbeats)
that a thread of each worker process rewrites every WORKER_BEAT_EVERY_S: the web process reads
it with one query, needs no broker round trip (a `celery inspect ping` waits its whole timeout
and says nothing while the broker is down), and a worker that crashed stops writing it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from typing import Any

from celery import current_app
from django.db import DatabaseError, connections
from django.utils import timezone

from eventing.conf import settings
from eventing.models import Heartbeat
from eventing.runtime import PerProcess

logger = logging.getLogger(__name__)

# The broker check opens a connection: cache its answer so probes every second stay cheap.
BROKER_CACHE_S = 5.0
BROKER_TIMEOUT_S = 2.0
CHECKS = ("database", "broker", "sweep", "workers")

WORKER_HEARTBEAT_PREFIX = "worker:"
WORKER_BEAT_EVERY_S = 2.0
# Five missed beats: a worker this quiet has exited, or is wedged.
WORKER_STALE_AFTER_S = 10.0

# A page that must not wait shows this until the first broker check has answered.
BROKER_CHECKING: dict[str, Any] = {"ok": None, "checking": True}


class BrokerAnswer:
    """The broker check's last answer in this process, and when it was given."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # Held while a background probe runs, so a page starts at most one.
        self.refreshing = threading.Lock()
        self.at = 0.0
        self.result: dict[str, Any] | None = None
        # The background probe, if one was started: runtime.stop() waits for it.
        self.probe: threading.Thread | None = None

    def stop(self, timeout_s: float) -> bool:
        """Wait for a background probe to end (it is bounded by the broker's timeouts)."""
        if self.probe is not None:
            self.probe.join(timeout_s)
            return not self.probe.is_alive()
        return True


_broker_answer = PerProcess(BrokerAnswer, stop=BrokerAnswer.stop)


def check_database() -> dict[str, Any]:
    """Run `SELECT 1` on the alias holding the event tables."""
    try:
        with connections[settings.DATABASE].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True}


def check_broker(now: float | None = None, *, wait: bool = True) -> dict[str, Any]:
    """Connect to the Celery broker with a short timeout; the answer is cached a few seconds.

    Without `wait` (a page that must not hang on a broker that is away), a stale answer is
    refreshed in a background thread and the last one known (or BROKER_CHECKING) is returned.
    """
    now = time.monotonic() if now is None else now
    cache = _broker_answer()
    with cache.lock:
        cached = cache.result
        if cached is not None and now - cache.at < BROKER_CACHE_S:
            return cached
    if not wait:
        refresh_broker_in_background()
        return cached or BROKER_CHECKING
    return probe_broker(now)


def probe_broker(now: float | None = None, cache: BrokerAnswer | None = None) -> dict[str, Any]:
    """Connect to the broker now and cache the answer (in `cache`, else this process's)."""
    now = time.monotonic() if now is None else now
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
        result: dict[str, Any] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    cache = cache or _broker_answer()
    with cache.lock:
        cache.at, cache.result = now, result
    return result


def refresh_broker_in_background() -> threading.Thread | None:
    """Probe the broker in a thread, unless one is probing already; returns it (or None)."""
    # The answer goes where the probe started: a runtime reset meanwhile does not receive it.
    cache = _broker_answer()
    if not cache.refreshing.acquire(blocking=False):
        return None

    def probe() -> None:
        try:
            probe_broker(cache=cache)
        finally:
            cache.refreshing.release()

    thread = cache.probe = threading.Thread(target=probe, name="eventing-broker-check", daemon=True)
    thread.start()
    return thread


def sweep_stale_after_s() -> float:
    """How old the last sweep may be before the deployment counts as unhealthy."""
    configured = settings.HEALTH_SWEEP_STALE_S
    if configured is not None:
        return float(configured)
    return max(10.0 * float(settings.SWEEP_INTERVAL_S), 10.0)


def check_sweep() -> dict[str, Any]:
    """Age of the sweeper's heartbeat; stale (or never run) means beat or its worker is down."""
    limit = sweep_stale_after_s()
    try:
        beat = Heartbeat.objects.using(settings.DATABASE).filter(name="sweep").first()
    except Exception as exc:  # noqa: BLE001 - the database check reports the cause
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "stale_after_s": limit}
    if beat is None:
        return {
            "ok": False,
            "error": "The sweeper never ran (is beat running?)",
            "age_s": None,
            "stale_after_s": limit,
        }
    age = (timezone.now() - beat.at).total_seconds()
    result: dict[str, Any] = {"ok": age <= limit, "age_s": round(age, 3), "stale_after_s": limit}
    if not result["ok"]:
        result["error"] = f"The last sweep was {age:.0f} s ago (is beat running?)"
    return result


def check_workers() -> dict[str, Any]:
    """How many workers wrote their heartbeat lately; none means nothing delivers."""
    since = timezone.now() - dt.timedelta(seconds=WORKER_STALE_AFTER_S)
    try:
        alive = sorted(
            Heartbeat.objects.using(settings.DATABASE)
            .filter(name__startswith=WORKER_HEARTBEAT_PREFIX, at__gte=since)
            .values_list("name", flat=True)
        )
    except Exception as exc:  # noqa: BLE001 - the database check reports the cause
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result: dict[str, Any] = {
        "ok": bool(alive),
        "alive": [name.removeprefix(WORKER_HEARTBEAT_PREFIX) for name in alive],
        "stale_after_s": WORKER_STALE_AFTER_S,
    }
    if not alive:
        result["error"] = (
            f"No worker reported in the last {WORKER_STALE_AFTER_S:.0f} s (are workers running?)"
        )
    return result


class WorkerHeartbeat:
    """The thread of a worker process that rewrites its `worker:<hostname>` row."""

    def __init__(self, hostname: str) -> None:
        # The row's key holds 50 characters.
        self.name = (WORKER_HEARTBEAT_PREFIX + hostname)[:50]
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Write the first beat now and keep writing (idempotent: one thread per process)."""
        if self.thread and self.thread.is_alive():
            return
        self.stopping.clear()
        self.thread = threading.Thread(target=self.run, name="eventing-heartbeat", daemon=True)
        self.thread.start()

    def run(self) -> None:
        try:
            while True:
                self.beat()
                if self.stopping.wait(WORKER_BEAT_EVERY_S):
                    return
        finally:
            connections.close_all()  # this thread's own connections

    def beat(self) -> None:
        """One write; a database error is logged and the next beat tries again."""
        try:
            Heartbeat.objects.using(settings.DATABASE).update_or_create(
                name=self.name, defaults={"at": timezone.now(), "detail": {"pid": os.getpid()}}
            )
        except DatabaseError as exc:
            logger.warning("Worker heartbeat not written: %s", exc)
            connections[settings.DATABASE].close()  # reconnect on the next beat

    def stop(self, timeout_s: float = WORKER_BEAT_EVERY_S + 5) -> bool:
        """Stop writing and remove the row: a worker shut down on purpose is gone at once."""
        self.stopping.set()
        if self.thread:
            self.thread.join(timeout_s)
        try:
            Heartbeat.objects.using(settings.DATABASE).filter(name=self.name).delete()
        except DatabaseError as exc:
            logger.warning("Worker heartbeat not removed (it goes stale instead): %s", exc)
            return False
        return not (self.thread and self.thread.is_alive())


# This worker process's heartbeat (eventing.runtime stops it on worker_shutdown and at exit).
worker_heartbeat = PerProcess(WorkerHeartbeat, stop=WorkerHeartbeat.stop)


def start_worker_heartbeat(hostname: str | None = None) -> WorkerHeartbeat:
    """Start this worker process's heartbeat (once per process; the worker's bootstep)."""
    beat = worker_heartbeat(hostname or f"pid{os.getpid()}")
    beat.start()
    return beat


def health(checks: tuple[str, ...] = CHECKS, *, wait: bool = True) -> dict[str, Any]:
    """Run the named checks; `ok` is true only when all of them are.

    `wait=False` does not wait for the broker (see `check_broker`): for pages, not probes.
    """
    runners = {
        "database": check_database,
        "broker": lambda: check_broker(wait=wait),
        "sweep": check_sweep,
        "workers": check_workers,
    }
    report: dict[str, Any] = {name: runners[name]() for name in checks}
    report["ok"] = all(part["ok"] for part in report.values())
    return report
