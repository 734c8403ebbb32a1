"""Health of a deployment: the database answers, the broker answers, the sweeper is recent."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.db import connections
from django.utils import timezone

from .conf import settings

# The broker check opens a connection: cache its answer so probes every second stay cheap.
BROKER_CACHE_S = 5.0
BROKER_TIMEOUT_S = 2.0
CHECKS = ("database", "broker", "sweep")

_broker_lock = threading.Lock()
_broker_cache: dict[str, Any] = {"at": 0.0, "result": None}


def check_database() -> dict[str, Any]:
    """Run `SELECT 1` on the alias holding the event tables."""
    try:
        with connections[settings.DATABASE].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True}


def check_broker(now: float | None = None) -> dict[str, Any]:
    """Connect to the Celery broker with a short timeout; the answer is cached a few seconds."""
    now = time.monotonic() if now is None else now
    with _broker_lock:
        cached = _broker_cache["result"]
        if cached is not None and now - _broker_cache["at"] < BROKER_CACHE_S:
            return cached
    try:
        from celery import current_app

        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
        result: dict[str, Any] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    with _broker_lock:
        _broker_cache.update(at=now, result=result)
    return result


def sweep_stale_after_s() -> float:
    """How old the last sweep may be before the deployment counts as unhealthy."""
    configured = settings.HEALTH_SWEEP_STALE_S
    if configured is not None:
        return float(configured)
    return max(10.0 * float(settings.SWEEP_INTERVAL_S), 10.0)


def check_sweep() -> dict[str, Any]:
    """Age of the sweeper's heartbeat; stale (or never run) means beat or its worker is down."""
    from .models import Heartbeat

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


def health(checks: tuple[str, ...] = CHECKS) -> dict[str, Any]:
    """Run the named checks; `ok` is true only when all of them are."""
    runners = {"database": check_database, "broker": check_broker, "sweep": check_sweep}
    report: dict[str, Any] = {name: runners[name]() for name in checks}
    report["ok"] = all(part["ok"] for part in report.values())
    return report
