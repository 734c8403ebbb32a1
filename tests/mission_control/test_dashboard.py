"""Dashboard figures, computed by plain functions without a request."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.utils import timezone

from eventing.models import EventStatus, Heartbeat, InvocationLog
from mission_control import charts, dashboard
from tests.factories import TriggerFactory
from tests.mission_control.helpers import make_event
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db


def test_status_counts_cover_the_window_only():
    trigger = TriggerFactory()
    make_event(trigger, EventStatus.PROCESSED)
    make_event(trigger, EventStatus.PROCESSED)
    make_event(trigger, EventStatus.FAILED)
    make_event(trigger, EventStatus.FAILED, created_ago_s=2 * 86400)
    counts = dashboard.status_counts(timezone.now() - dashboard.DAY)
    assert counts["processed"] == 2
    assert counts["failed"] == 1
    assert counts["cancelled"] == 0
    assert dashboard.success_rate(counts) == pytest.approx(2 / 3)
    assert dashboard.success_rate({"processed": 0, "failed": 0}) is None


def test_events_per_minute_buckets():
    trigger = TriggerFactory()
    now = timezone.now().replace(second=30, microsecond=0)
    for ago in (0, 0, 5 * 60, 59 * 60):
        make_event(trigger, created_ago_s=ago)
    series = dashboard.events_per_minute(
        now + dt.timedelta(seconds=1), minutes=60, bucket_minutes=1
    )
    assert len(series) == 60
    values = [value for _, value in series]
    assert values[-1] == 2
    assert values[-6] == 1
    assert sum(values) == 4
    coarse = dashboard.events_per_minute(now, minutes=24 * 60, bucket_minutes=15)
    assert len(coarse) == 96
    assert sum(v * 15 for _, v in coarse) == pytest.approx(4)


def test_percentile_nearest_rank():
    assert dashboard.percentile([], 0.5) is None
    assert dashboard.percentile([5], 0.95) == 5
    values = list(range(1, 101))
    assert dashboard.percentile(values, 0.5) == 50
    assert dashboard.percentile(values, 0.95) == 95


def test_latencies():
    trigger = TriggerFactory()
    event = make_event(trigger)
    now = timezone.now()
    for attempt, duration in enumerate((10, 20, 30, 1000), start=1):
        InvocationLog.objects.create(
            event=event, attempt=attempt, invoked_at=now, duration_ms=duration, request={}
        )
    p50, p95 = dashboard.call_durations(now - dashboard.HOUR)
    assert (p50, p95) == (20, 1000)
    lag50, lag95 = dashboard.delivery_lag(now - dashboard.HOUR)
    assert lag50 == pytest.approx(1.0)


def test_backlog_and_oldest_due():
    trigger = TriggerFactory()
    now = timezone.now()
    make_event(trigger, EventStatus.STAGED, deliver_at=now - dt.timedelta(seconds=90))
    make_event(trigger, EventStatus.STAGED, deliver_at=now - dt.timedelta(seconds=5))
    make_event(trigger, EventStatus.STAGED, deliver_at=now + dt.timedelta(hours=1))
    count, oldest = dashboard.due_backlog(now)
    assert count == 2
    assert (now - oldest).total_seconds() == pytest.approx(90, abs=1)
    assert dashboard.scheduled_count(now) == 1
    board = dashboard.build(now, with_health=False)
    assert board.backlog == 2
    assert board.oldest_due_age_s == pytest.approx(90, abs=1)


def test_most_failing_triggers():
    a, b, c = TriggerFactory(name="a"), TriggerFactory(name="b"), TriggerFactory(name="c")
    for trigger, n in ((a, 1), (b, 3), (c, 2)):
        for _ in range(n):
            make_event(trigger, EventStatus.FAILED)
    make_event(a, EventStatus.FAILED, created_ago_s=3 * 86400)
    rows = dashboard.most_failing_triggers(timezone.now() - dashboard.DAY, limit=2)
    assert [(r["trigger_name"], r["failed"]) for r in rows] == [("b", 3), ("c", 2)]


def test_sweep_health():
    now = timezone.now()
    assert dashboard.sweep_health(now)["sweep_ok"] is False
    Heartbeat.objects.create(name="sweep", at=now - dt.timedelta(seconds=2))
    fresh = dashboard.sweep_health(now)
    assert fresh["sweep_ok"]
    assert fresh["sweep_age_s"] == pytest.approx(2)
    stale = dashboard.sweep_health(now + dt.timedelta(minutes=5))
    assert stale["sweep_ok"] is False


def test_workers_unknown_when_the_broker_cannot_broadcast():
    with mock.patch("celery.app.control.Control.ping", side_effect=NotImplementedError("no")):
        assert dashboard.workers_answering()["state"] == "unknown"
    with mock.patch("celery.app.control.Control.ping", return_value=[{"w1@h": {"ok": "pong"}}]):
        assert dashboard.workers_answering() == {"state": "ok", "names": ["w1@h"]}


def test_health_probes_run_in_the_background_and_are_cached():
    with (
        mock.patch.object(dashboard, "broker_reachable", return_value=True) as broker,
        mock.patch.object(dashboard, "workers_answering", return_value={"state": "none"}),
    ):
        first = dashboard.health()  # nothing known yet: the page does not wait
        assert first["workers"]["state"] in ("checking", "none")
        wait_until(
            lambda: broker.call_count == 1 and dashboard.health()["broker"] is True,
            message="background probe",
        )
        dashboard.health()
        assert broker.call_count == 1  # cached
        assert dashboard.health(use_cache=False)["broker"] is True
        assert broker.call_count == 2


def test_chart_is_plain_svg():
    svg = charts.line_chart([("10:00", 0), ("10:01", 4.5), ("10:02", 2)], title="t")
    assert svg.startswith("<svg")
    assert "polyline" in svg
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")
    assert charts.nice_max(4.5) == 5
    assert charts.nice_max(0) == 1
    assert charts.nice_max(120) == 200


def test_day_series_is_cached_within_the_minute():
    trigger = TriggerFactory()
    now = timezone.now()
    first = dashboard.day_series(now)
    make_event(trigger, created_ago_s=0)
    assert dashboard.day_series(now) == first  # same minute: cached
    later = dashboard.day_series(now + dt.timedelta(minutes=1))
    assert sum(v for _, v in later) > sum(v for _, v in first)
