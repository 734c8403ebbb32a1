"""Prometheus metrics: counters where things happen, gauges read from the database at scrape.

Counters and histograms live in the process that counts them. A web process counts the events
its requests emit; a worker counts deliveries. Each process therefore needs to be scraped:
web processes serve `/metrics` (see `eventing.urls`), and a Celery worker serves its own
registry on `EVENTING["WORKER_METRICS_PORT"]` when that is set (the threads pool runs one
process per worker, so one port per worker). With several gunicorn workers or a prefork pool,
set `PROMETHEUS_MULTIPROC_DIR` (an empty folder, per host or container) for every process:
prometheus-client then keeps the values in files there and both endpoints sum them.

Gauges (backlog by status, age of the oldest due event, age of the last sweep) come from the
database when scraped, so any web process gives the same answer.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily

from eventing.conf import settings
from eventing.models import EventLog, EventStatus, Heartbeat
from eventing.runtime import PerProcess

logger = logging.getLogger(__name__)

# Webhook calls: most take milliseconds, slow receivers seconds, timeouts up to a minute.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Queue lag: from due to claimed; retries and outages push it to minutes or hours.
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


def event_counter(name: str, documentation: str) -> Counter:
    """A counter of events by trigger and type: `.labels(trigger_name, event_type)`, positional
    (the keyword form costs a mapping per call, and deliveries count every attempt)."""
    return Counter(name, documentation, ["trigger", "type"])


EVENTS_EMITTED = event_counter(
    "eventing_events_emitted", "Events recorded (committed), one per matching trigger."
)
EVENTS_PROCESSED = event_counter(
    "eventing_events_processed",
    "Events the webhook took (a 2xx in full and in time, without an `error` reply).",
)
EVENTS_FAILED = event_counter(
    "eventing_events_failed", "Events that ended failed (retries spent, or 410)."
)
EVENTS_RETRIED = event_counter(
    "eventing_events_retried", "Failed attempts that scheduled another attempt."
)
INVOCATIONS = Counter(
    "eventing_invocations",
    "Webhook calls by status class: 2xx, 3xx, 4xx, 5xx, or error (timeout, refused, DNS).",
    ["trigger", "status_class"],
)
DELIVERY_LATENCY = Histogram(
    "eventing_delivery_duration_seconds",
    "Duration of webhook calls.",
    ["trigger"],
    buckets=LATENCY_BUCKETS,
)
QUEUE_LAG = Histogram(
    "eventing_queue_lag_seconds",
    "From the time an attempt was due to the time a worker took it.",
    ["trigger"],
    buckets=LAG_BUCKETS,
)


def status_class(response) -> str:
    """`2xx` … `5xx` for a call that got its reply, `error` when the call failed (no response,
    or a timeout or reset after the status line: such a 200 is no 2xx reply)."""
    if response.error or response.status_code is None:
        return "error"
    return f"{response.status_code // 100}xx"


def count_emitted(rows: Iterable) -> None:
    """Count committed events (called after commit: a rollback emitted nothing)."""
    for row in rows:
        EVENTS_EMITTED.labels(row.trigger_name, row.type).inc()


def observe_delivery(event, trigger, claimed_at: dt.datetime, response, outcome) -> None:
    """Count one attempt: its status class, duration, queue lag and where it left the event."""
    # Positional labels, in declaration order (see event_counter).
    name = trigger.name
    INVOCATIONS.labels(name, status_class(response)).inc()
    DELIVERY_LATENCY.labels(name).observe(max(response.duration_ms, 0) / 1000)
    QUEUE_LAG.labels(name).observe(max((claimed_at - event.deliver_at).total_seconds(), 0.0))
    if outcome.succeeded:
        outcome_counter = EVENTS_PROCESSED
    elif outcome.status == EventStatus.FAILED:
        outcome_counter = EVENTS_FAILED
    else:
        outcome_counter = EVENTS_RETRIED
    outcome_counter.labels(name, event.type).inc()


class DatabaseCollector:
    """Gauges computed from the event table at scrape time."""

    def collect(self):
        """Yield backlog by status, oldest due age and last sweep age."""
        now = timezone.now()
        db = settings.DATABASE
        backlog = GaugeMetricFamily(
            "eventing_backlog", "Events not finished yet, by status.", labels=["status"]
        )
        counts = dict(
            EventLog.objects.using(db)
            .filter(status__in=(EventStatus.INTENT, EventStatus.STAGED, EventStatus.PROCESSING))
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by()
        )
        for status in (EventStatus.INTENT, EventStatus.STAGED, EventStatus.PROCESSING):
            backlog.add_metric([status.value], counts.get(status, 0))
        yield backlog

        oldest = (
            EventLog.objects.using(db)
            .filter(status=EventStatus.STAGED, deliver_at__lte=now)
            .aggregate(oldest=Min("deliver_at"))["oldest"]
        )
        yield GaugeMetricFamily(
            "eventing_oldest_due_seconds",
            "How long the oldest staged event has been due (0 when none is).",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )

        beat = Heartbeat.objects.using(db).filter(name="sweep").first()
        yield GaugeMetricFamily(
            "eventing_last_sweep_age_seconds",
            "Seconds since the sweeper last finished (-1 if it never ran).",
            value=(now - beat.at).total_seconds() if beat else -1.0,
        )


def process_registry():
    """The registry holding this process's counters, or every process's in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def render() -> tuple[bytes, str]:
    """The exposition text: the process (or processes) counters, then the database gauges."""
    database = CollectorRegistry()
    database.register(DatabaseCollector())
    return generate_latest(process_registry()) + generate_latest(database), CONTENT_TYPE_LATEST


class WorkerExporter:
    """The HTTP server (and its thread) serving one worker process's metrics."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server, self.thread = start_http_server(port, registry=process_registry())

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout_s)
        return not self.thread.is_alive()


# This worker's exporter (started by the worker's bootstep, stopped by eventing.runtime.stop).
worker_exporter = PerProcess(WorkerExporter, stop=WorkerExporter.stop)


def start_worker_exporter() -> WorkerExporter | None:
    """Serve this worker's metrics on EVENTING["WORKER_METRICS_PORT"]; None if not asked or
    the port is taken."""
    port = settings.WORKER_METRICS_PORT
    if not port:
        return None
    try:
        exporter = worker_exporter(int(port))
    except OSError as exc:
        # A second worker on the same host must not die for its metrics.
        logger.warning("Worker metrics not served on port %s: %s", port, exc)
        return None
    logger.info("Worker metrics on port %s (/metrics)", port)
    return exporter
