"""The numbers of the Mission Control dashboard, as plain functions of the database.

Every query reads a bounded number of index entries, however many events the last 24 hours
hold: counts are exact up to `COUNT_CAP` rows and the planner's estimate past it
(shown with "≈"), latencies and failures come from the latest few thousand rows, and the
charts count each closed time bucket once (an event's created_at never changes) and keep it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError, connections
from django.db.models import Count, Min, QuerySet
from django.db.models.functions import TruncMinute
from django.utils import timezone

from eventing.models import CircuitState, EventLog, EventStatus, InvocationLog, TriggerCircuit
from eventing.ops import health as health_checks

from .counting import bounded_count, bounded_counts, estimated_count, plan_estimate

DAY = dt.timedelta(hours=24)
HOUR = dt.timedelta(hours=1)
LATENCY_SAMPLE = 2000
# The latest failed events the "most failing triggers" table ranks.
FAILURE_SAMPLE = 2000
# The tiles are exact up to this many events and PostgreSQL's estimate past it (read from an
# index: the eight tiles read at most 8 × 1,001 entries).
COUNT_CAP = 1000
BUCKET_CACHE_KEY = "mission_control:created-per-bucket"
# A closed bucket's count never changes; kept a little longer than the 24 h chart shows it.
BUCKET_CACHE_S = 25 * 3600
# A bucket counts as closed this long after its end: a transaction that wrote a row stamped
# just before the end may commit a moment later.
CLOSE_GRACE = dt.timedelta(minutes=1)
# Events a chart counts in one render for buckets the cache lacks (the planner's estimate):
# after a cache clear, a day of 1M events fills over a few renders instead of costing one ~1 s
# (about 150k rows counted in 100 ms on a busy 2-core machine).
CHART_COUNT_BUDGET = 150_000


@dataclass
class Dashboard:
    """Everything the index page shows."""

    now: dt.datetime
    counts_24h: dict[str, int]
    success_rate_24h: float | None
    # None: a bucket not counted yet (see events_per_minute).
    per_minute_1h: list[tuple[str, float | None]]
    per_minute_24h: list[tuple[str, float | None]]
    call_p50_ms: float | None
    call_p95_ms: float | None
    lag_p50_s: float | None
    lag_p95_s: float | None
    backlog: int
    scheduled: int
    oldest_due_age_s: float | None
    failing_triggers: list[dict[str, Any]]
    total_estimate: int
    # Names of the figures above that are planner estimates (past COUNT_CAP rows).
    estimated: frozenset[str] = frozenset()
    health: dict[str, Any] = field(default_factory=dict)
    open_circuits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def charts_pending(self) -> bool:
        """Whether a chart has buckets not counted yet (after a cache clear, on a busy day)."""
        return any(v is None for _, v in [*self.per_minute_1h, *self.per_minute_24h])


def build(now: dt.datetime | None = None, *, with_health: bool = True) -> Dashboard:
    """Compute every dashboard figure at `now`."""
    now = now or timezone.now()
    # Every capped count of the page in one statement (a round trip costs more than the few
    # thousand index entries each reads).
    figures = bounded_counts({**status_windows(now - DAY), **queue_windows(now)}, COUNT_CAP)
    estimated = {name for name, (_, is_estimate) in figures.items() if is_estimate}
    counts = {status: figures[status][0] for status in EventStatus.values}
    backlog, scheduled = figures["backlog"][0], figures["scheduled"][0]
    oldest = queue_windows(now)["backlog"].order_by().aggregate(oldest=Min("deliver_at"))["oldest"]
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
        scheduled=scheduled,
        oldest_due_age_s=(now - oldest).total_seconds() if oldest else None,
        failing_triggers=most_failing_triggers(now - DAY),
        total_estimate=estimated_count(EventLog.objects.all()),
        estimated=frozenset(estimated),
        open_circuits=open_circuits(),
        # /healthz's report; the page never waits for the broker (its check runs behind).
        health=health_checks.health(wait=False) if with_health else {},
    )


def status_counts(since: dt.datetime) -> dict[str, int]:
    """Events created since `since`, by status (every status present, zeros included)."""
    return status_counts_bounded(since)[0]


def status_counts_bounded(since: dt.datetime) -> tuple[dict[str, int], set[str]]:
    """Events created since `since` by status, and the statuses whose count is an estimate
    (index: status, created_at; at most COUNT_CAP + 1 entries read per status)."""
    figures = bounded_counts(status_windows(since), COUNT_CAP)
    counts = {status: count for status, (count, _) in figures.items()}
    return counts, {status for status, (_, is_estimate) in figures.items() if is_estimate}


def status_windows(since: dt.datetime) -> dict[str, QuerySet]:
    """Events created since `since`, one queryset per status."""
    return {
        status: EventLog.objects.filter(status=status, created_at__gte=since)
        for status in EventStatus.values
    }


def queue_windows(now: dt.datetime) -> dict[str, QuerySet]:
    """Staged events already due ("backlog") and due later ("scheduled")."""
    staged = EventLog.objects.filter(status=EventStatus.STAGED)
    return {
        "backlog": staged.filter(deliver_at__lte=now),
        "scheduled": staged.filter(deliver_at__gt=now),
    }


def success_rate(counts: dict[str, int]) -> float | None:
    """Processed share of finished deliveries (processed + failed), or None without any."""
    done = counts.get(EventStatus.PROCESSED, 0) + counts.get(EventStatus.FAILED, 0)
    return counts.get(EventStatus.PROCESSED, 0) / done if done else None


def events_per_minute(
    now: dt.datetime, *, minutes: int, bucket_minutes: int
) -> list[tuple[str, float | None]]:
    """Events created per minute over the last `minutes`, averaged per bucket, oldest first;
    None for a bucket not counted yet.

    Closed buckets are counted once and cached (created_at never changes); only the bucket
    holding `now` is counted on every call. Buckets the cache lacks (after a cache clear) are
    counted newest first, at most about CHART_COUNT_BUDGET rows a call: the rest show as a gap
    until the next calls count them.
    """
    step = dt.timedelta(minutes=bucket_minutes)
    hour = now.replace(minute=0, second=0, microsecond=0)
    # Buckets on the clock (…:00, :15, …), so a closed one keeps its cache key.
    end = hour + step * ((now - hour) // step + 1)
    start = end - dt.timedelta(minutes=minutes)
    starts = [start + i * step for i in range(minutes // bucket_minutes)]
    closed_before = now - CLOSE_GRACE
    keys = {
        at: f"{BUCKET_CACHE_KEY}:{bucket_minutes}:{at:%Y%m%d%H%M}"
        for at in starts
        if at + step <= closed_before
    }
    # One round trip each way, whatever the cache backend (the database cache in some setups).
    cached = cache.get_many(list(keys.values()))
    counts = {at: cached[key] for at, key in keys.items() if key in cached}
    open_now = [at for at in starts if at not in keys]
    gap = newest_run([at for at in keys if at not in counts], step)
    if gap:
        gap = affordable_buckets(gap, step)
    counted: Counter[dt.datetime] = Counter()
    for first, last in count_ranges(gap, open_now, step):
        counted.update(count_created_per_bucket(first, last + step, start, step))
    counts.update({at: counted.get(at, 0) for at in [*gap, *open_now]})
    if gap:
        cache.set_many({keys[at]: counts[at] for at in gap}, BUCKET_CACHE_S)
    return [
        (
            timezone.localtime(at).strftime("%H:%M"),
            counts[at] / bucket_minutes if at in counts else None,
        )
        for at in starts
    ]


def newest_run(buckets: list[dt.datetime], step: dt.timedelta) -> list[dt.datetime]:
    """The newest stretch of consecutive `buckets` (oldest first)."""
    run = buckets[-1:]
    for at in reversed(buckets[:-1]):
        if at + step != run[0]:
            break
        run.insert(0, at)
    return run


def count_ranges(
    gap: list[dt.datetime], open_now: list[dt.datetime], step: dt.timedelta
) -> list[tuple[dt.datetime, dt.datetime]]:
    """(first, last) bucket of each count to run: the gap and the open buckets, as one range
    when they touch."""
    if gap and open_now and gap[-1] + step == open_now[0]:
        return [(gap[0], open_now[-1])]
    return [(run[0], run[-1]) for run in (gap, open_now) if run]


def affordable_buckets(missing: list[dt.datetime], step: dt.timedelta) -> list[dt.datetime]:
    """The newest of `missing` (oldest first) whose events the planner puts within
    CHART_COUNT_BUDGET rows; at least the newest one, all of them off PostgreSQL."""
    chosen = missing
    while len(chosen) > 1:
        window = EventLog.objects.filter(
            created_at__gte=chosen[0], created_at__lt=chosen[-1] + step
        )
        if connections[window.db].vendor != "postgresql":
            break
        try:
            estimate = plan_estimate(window)
        except (DatabaseError, KeyError, IndexError, TypeError, ValueError):
            break
        if estimate is None or estimate <= CHART_COUNT_BUDGET:
            break
        chosen = chosen[len(chosen) // 2 :]
    return chosen


def count_created_per_bucket(
    since: dt.datetime, until: dt.datetime, origin: dt.datetime, step: dt.timedelta
) -> dict[dt.datetime, int]:
    """Events created in [since, until) per bucket of `step` counted from `origin`."""
    db = EventLog.objects.db
    if connections[db].vendor == "postgresql":
        return count_per_bucket_by_range(since, until, step, db)
    rows = (
        EventLog.objects.filter(created_at__gte=since, created_at__lt=until)
        .annotate(minute=TruncMinute("created_at"))
        .order_by()
        .values("minute")
        .annotate(n=Count("*"))
    )
    counts: Counter[dt.datetime] = Counter()
    for row in rows:
        counts[origin + step * ((row["minute"] - origin) // step)] += row["n"]
    return counts


def count_per_bucket_by_range(
    since: dt.datetime, until: dt.datetime, step: dt.timedelta, db: str
) -> dict[dt.datetime, int]:
    """PostgreSQL: one index-only range count per bucket (`since` is a bucket start). Grouping
    by a truncated time computed a function of every row and hashed it: 2-3 times the cost."""
    starts = [since + i * step for i in range((until - since) // step)]
    connection = connections[db]
    table = connection.ops.quote_name(EventLog._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT b.at, (SELECT count(*) FROM {table} AS e "
            "WHERE e.created_at >= b.at AND e.created_at < b.at + %s) "
            "FROM unnest(%s::timestamptz[]) AS b(at)",
            [step, starts],
        )
        return dict(cursor.fetchall())


def day_series(now: dt.datetime) -> list[tuple[str, float | None]]:
    """The 24 h chart (15-minute buckets)."""
    return events_per_minute(now, minutes=24 * 60, bucket_minutes=15)


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
    return due_backlog_bounded(now)[:2]


def due_backlog_bounded(now: dt.datetime) -> tuple[int, dt.datetime | None, bool]:
    """Staged events already due (bounded_count), the due time of the oldest, and whether the
    count is an estimate."""
    due = EventLog.objects.filter(status=EventStatus.STAGED, deliver_at__lte=now)
    count, is_estimate = bounded_count(due, COUNT_CAP)
    oldest = due.order_by().aggregate(oldest=Min("deliver_at"))["oldest"]
    return count, oldest, is_estimate


def scheduled_count(now: dt.datetime) -> int:
    """Staged events due later (scheduled or waiting for a retry)."""
    return scheduled_count_bounded(now)[0]


def scheduled_count_bounded(now: dt.datetime) -> tuple[int, bool]:
    """Staged events due later, and whether the count is an estimate (bounded_count)."""
    return bounded_count(
        EventLog.objects.filter(status=EventStatus.STAGED, deliver_at__gt=now), COUNT_CAP
    )


def open_circuits(limit: int = 20) -> list[dict[str, Any]]:
    """Triggers whose circuit is open: id, name, since when, failures, next probe."""
    rows = (
        TriggerCircuit.objects.filter(state=CircuitState.OPEN)
        .order_by("opened_at")
        .values("trigger_id", "trigger__name", "opened_at", "consecutive_failures", "next_probe_at")
    )
    return [{**row, "trigger_name": row.pop("trigger__name")} for row in rows[:limit]]


def most_failing_triggers(since: dt.datetime, limit: int = 5) -> list[dict[str, Any]]:
    """The triggers with most failed events among the latest FAILURE_SAMPLE created since
    `since` (index: status, created_at): name, id, failures."""
    rows = (
        EventLog.objects.filter(status=EventStatus.FAILED, created_at__gte=since)
        .order_by("-created_at")
        .values_list("trigger_id", "trigger_name")[:FAILURE_SAMPLE]
    )
    ranked = sorted(Counter(rows).items(), key=lambda item: (-item[1], item[0][1]))
    return [
        {"trigger_id": trigger_id, "trigger_name": name, "failed": failed}
        for (trigger_id, name), failed in ranked[:limit]
    ]
