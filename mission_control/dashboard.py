"""The numbers of the Mission Control dashboard, as plain functions of the database.

Every query is bounded by an indexed recent window (created_at, invoked_at, the partial index
of staged rows), so the dashboard stays fast however large `event_logs` grows.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Min
from django.db.models.functions import TruncMinute
from django.utils import timezone

from eventing.conf import settings
from eventing.dispatch.sweeper import SWEEP_HEARTBEAT
from eventing.models import EventLog, EventStatus, Heartbeat, InvocationLog

from .counting import estimated_count

logger = logging.getLogger(__name__)

DAY = dt.timedelta(hours=24)
HOUR = dt.timedelta(hours=1)
LATENCY_SAMPLE = 5000
HEALTH_CACHE_KEY = "mission_control:health"
HEALTH_CACHE_S = 10
HEALTH_LAST_KEY = "mission_control:health:last"
HEALTH_LAST_S = 3600
DAY_SERIES_CACHE_KEY = "mission_control:day-series"
DAY_SERIES_CACHE_S = 60
PROBE_TIMEOUT_S = 0.5
# A ping waits this long for every reply; it runs in the background, and the filesystem
# broker polls its folders only every second.
PING_TIMEOUT_S = 2.0


@dataclass
class Dashboard:
    """Everything the index page shows."""

    now: dt.datetime
    counts_24h: dict[str, int]
    success_rate_24h: float | None
    per_minute_1h: list[tuple[str, float]]
    per_minute_24h: list[tuple[str, float]]
    call_p50_ms: float | None
    call_p95_ms: float | None
    lag_p50_s: float | None
    lag_p95_s: float | None
    backlog: int
    scheduled: int
    oldest_due_age_s: float | None
    failing_triggers: list[dict[str, Any]]
    total_estimate: int
    health: dict[str, Any] = field(default_factory=dict)


def build(now: dt.datetime | None = None, *, with_health: bool = True) -> Dashboard:
    """Compute every dashboard figure at `now`."""
    now = now or timezone.now()
    counts = status_counts(now - DAY)
    backlog, oldest = due_backlog(now)
    call_p50, call_p95 = call_durations(now - HOUR)
    lag_p50, lag_p95 = delivery_lag(now - HOUR)
    return Dashboard(
        now=now,
        counts_24h=counts,
        success_rate_24h=success_rate(counts),
        per_minute_1h=events_per_minute(now, minutes=60, bucket_minutes=1),
        per_minute_24h=day_series(now),
        call_p50_ms=call_p50,
        call_p95_ms=call_p95,
        lag_p50_s=lag_p50,
        lag_p95_s=lag_p95,
        backlog=backlog,
        scheduled=scheduled_count(now),
        oldest_due_age_s=(now - oldest).total_seconds() if oldest else None,
        failing_triggers=most_failing_triggers(now - DAY),
        total_estimate=estimated_count(EventLog.objects.all()),
        health=health() if with_health else {},
    )


def status_counts(since: dt.datetime) -> dict[str, int]:
    """Events created since `since`, by status (every status present, zeros included)."""
    rows = (
        EventLog.objects.filter(created_at__gte=since)
        .order_by()
        .values("status")
        .annotate(n=Count("*"))
    )
    counts = dict.fromkeys(EventStatus.values, 0)
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def success_rate(counts: dict[str, int]) -> float | None:
    """Processed share of finished deliveries (processed + failed), or None without any."""
    done = counts.get(EventStatus.PROCESSED, 0) + counts.get(EventStatus.FAILED, 0)
    return counts.get(EventStatus.PROCESSED, 0) / done if done else None


def events_per_minute(
    now: dt.datetime, *, minutes: int, bucket_minutes: int
) -> list[tuple[str, float]]:
    """Events created per minute over the last `minutes`, averaged per bucket, oldest first."""
    end = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    start = end - dt.timedelta(minutes=minutes)
    rows = (
        EventLog.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(minute=TruncMinute("created_at"))
        .order_by()
        .values("minute")
        .annotate(n=Count("*"))
    )
    buckets = [0] * (minutes // bucket_minutes)
    for row in rows:
        index = int((row["minute"] - start).total_seconds() // 60) // bucket_minutes
        if 0 <= index < len(buckets):
            buckets[index] += row["n"]
    return [
        (
            timezone.localtime(start + dt.timedelta(minutes=i * bucket_minutes)).strftime("%H:%M"),
            n / bucket_minutes,
        )
        for i, n in enumerate(buckets)
    ]


def day_series(now: dt.datetime) -> list[tuple[str, float]]:
    """The 24 h chart (15-minute buckets), cached for a minute: its buckets barely move, and
    on a busy day it is the dashboard's most expensive query."""
    key = f"{DAY_SERIES_CACHE_KEY}:{now:%Y%m%d%H%M}"
    series = cache.get(key)
    if series is None:
        series = events_per_minute(now, minutes=24 * 60, bucket_minutes=15)
        cache.set(key, series, DAY_SERIES_CACHE_S)
    return series


def percentile(values: list[float], fraction: float) -> float | None:
    """The `fraction` percentile of `values` (nearest rank), or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def call_durations(since: dt.datetime) -> tuple[float | None, float | None]:
    """p50 and p95 of webhook call time (ms) over the latest invocations since `since`."""
    durations = list(
        InvocationLog.objects.filter(invoked_at__gte=since)
        .order_by("-invoked_at")
        .values_list("duration_ms", flat=True)[:LATENCY_SAMPLE]
    )
    return percentile(durations, 0.5), percentile(durations, 0.95)


def delivery_lag(since: dt.datetime) -> tuple[float | None, float | None]:
    """p50 and p95 of due → processed (s) of events processed among those created since `since`.

    Measured from the last due time, so scheduled events and retry back-off do not count as
    lateness; what remains is queueing plus the successful call.
    """
    rows = (
        EventLog.objects.filter(status=EventStatus.PROCESSED, created_at__gte=since)
        .order_by("-created_at")
        .values_list("deliver_at", "processed_at")[:LATENCY_SAMPLE]
    )
    lags = [max(0.0, (done - due).total_seconds()) for due, done in rows if done and due]
    return percentile(lags, 0.5), percentile(lags, 0.95)


def due_backlog(now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """Staged events already due, and the due time of the oldest (partial index on staged)."""
    due = EventLog.objects.filter(status=EventStatus.STAGED, deliver_at__lte=now)
    result = due.order_by().aggregate(n=Count("*"), oldest=Min("deliver_at"))
    return result["n"], result["oldest"]


def scheduled_count(now: dt.datetime) -> int:
    """Staged events due later (scheduled or waiting for a retry)."""
    return EventLog.objects.filter(status=EventStatus.STAGED, deliver_at__gt=now).count()


def most_failing_triggers(since: dt.datetime, limit: int = 5) -> list[dict[str, Any]]:
    """The triggers with most failed events since `since`: name, id, failures."""
    rows = (
        EventLog.objects.filter(status=EventStatus.FAILED, created_at__gte=since)
        .order_by()
        .values("trigger_id", "trigger_name")
        .annotate(failed=Count("*"))
        .order_by("-failed", "trigger_name")[:limit]
    )
    return list(rows)


def health(*, use_cache: bool = True) -> dict[str, Any]:
    """Last sweep, broker reachable, workers answering.

    With `use_cache`, the page never waits for the broker: it shows the probes of the last
    few seconds and, when they are older, refreshes them in the background (a worker ping
    always waits its whole timeout). Without it, the probes run now.
    """
    if not use_cache:
        return {**run_probes(), **sweep_health()}
    probes = cache.get(HEALTH_CACHE_KEY)
    if probes is None:
        refresh_probes_in_background()
        probes = cache.get(HEALTH_LAST_KEY) or CHECKING
    return {**probes, **sweep_health()}


CHECKING: dict[str, Any] = {"broker": None, "workers": {"state": "checking", "names": []}}
_refreshing = threading.Lock()


def run_probes() -> dict[str, Any]:
    """Probe the broker and the workers now, and remember the answer."""
    probes = {"broker": broker_reachable(), "workers": workers_answering()}
    cache.set(HEALTH_CACHE_KEY, probes, HEALTH_CACHE_S)
    cache.set(HEALTH_LAST_KEY, probes, HEALTH_LAST_S)
    return probes


def refresh_probes_in_background() -> threading.Thread | None:
    """Run the probes in a thread, unless one is running already; returns it (or None)."""
    if not _refreshing.acquire(blocking=False):
        return None

    def probe() -> None:
        try:
            run_probes()
        finally:
            _refreshing.release()

    thread = threading.Thread(target=probe, name="mission-control-health", daemon=True)
    thread.start()
    return thread


def sweep_health(now: dt.datetime | None = None) -> dict[str, Any]:
    """When the sweeper last ran, and whether that is recent enough."""
    now = now or timezone.now()
    beat = Heartbeat.objects.filter(name=SWEEP_HEARTBEAT).first()
    if beat is None:
        return {"last_sweep": None, "sweep_age_s": None, "sweep_ok": False}
    age = (now - beat.at).total_seconds()
    # A few missed beats are normal under load; ten mean the sweeper is not running.
    return {
        "last_sweep": beat.at,
        "sweep_age_s": age,
        "sweep_ok": age <= max(10.0, 10 * settings.SWEEP_INTERVAL_S),
    }


def broker_reachable() -> bool:
    """Whether the Celery broker accepts a connection."""
    from celery import current_app

    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_S)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        logger.info("Broker not reachable", exc_info=True)
        return False


def workers_answering() -> dict[str, Any]:
    """Workers answering a ping: {"state": "ok" | "none" | "unknown", "names": [...]}."""
    from celery import current_app

    try:
        replies = current_app.control.ping(timeout=PING_TIMEOUT_S) or []
    except Exception as exc:  # noqa: BLE001 - e.g. a broker without broadcast support
        return {"state": "unknown", "names": [], "detail": str(exc)[:200]}
    names = sorted(name for reply in replies for name in reply)
    if not names and not broadcasts(current_app):
        # Silence proves little on a transport whose broadcasts may arrive late or never.
        return {"state": "unknown", "names": [], "detail": "no reply; broadcast is unreliable here"}
    return {"state": "ok" if names else "none", "names": names}


def broadcasts(app) -> bool:
    """Whether the broker reliably delivers broadcast (fanout) messages such as pings."""
    with app.connection_for_write() as conn:
        transport = conn.transport
        # kombu's filesystem fanout is best effort (polled folders, no delivery guarantee).
        if getattr(transport, "driver_type", "") == "filesystem":
            return False
        return "fanout" in getattr(transport.implements, "exchange_type", frozenset())
