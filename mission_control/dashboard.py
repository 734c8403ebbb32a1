"""The numbers of the Mission Control dashboard, as plain functions of the database.

Every query is bounded by an indexed recent window (created_at, invoked_at, the partial index
of staged rows), so the dashboard stays fast however large `event_logs` grows.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Min
from django.db.models.functions import TruncMinute
from django.utils import timezone

from eventing.models import CircuitState, EventLog, EventStatus, InvocationLog, TriggerCircuit
from eventing.ops import health as health_checks

from .counting import estimated_count

DAY = dt.timedelta(hours=24)
HOUR = dt.timedelta(hours=1)
LATENCY_SAMPLE = 5000
DAY_SERIES_CACHE_KEY = "mission_control:day-series"
DAY_SERIES_CACHE_S = 60


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
    open_circuits: list[dict[str, Any]] = field(default_factory=list)


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
        open_circuits=open_circuits(),
        # /healthz's report; the page never waits for the broker (its check runs behind).
        health=health_checks.health(wait=False) if with_health else {},
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


def open_circuits(limit: int = 20) -> list[dict[str, Any]]:
    """Triggers whose circuit is open: id, name, since when, failures, next probe."""
    rows = (
        TriggerCircuit.objects.filter(state=CircuitState.OPEN)
        .order_by("opened_at")
        .values("trigger_id", "trigger__name", "opened_at", "consecutive_failures", "next_probe_at")
    )
    return [{**row, "trigger_name": row.pop("trigger__name")} for row in rows[:limit]]


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
