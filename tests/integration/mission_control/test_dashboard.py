"""Dashboard figures, computed by plain functions without a request."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from unittest import mock

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from config.celery import app
from eventing.checks import check_broker
from eventing.models import EventStatus, Heartbeat, InvocationLog
from eventing.ops import health
from mission_control import charts, dashboard
from tests.factories import TriggerFactory
from tests.support.mission_control import make_event
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


# The dashboard reports /healthz's checks (eventing.ops.health). It used to run probes of its
# own, which disagreed: a ping instead of worker heartbeats, its own sweep staleness rule, its
# own broker cache.


@pytest.fixture
def no_other_workers():
    """Only this test's worker heartbeats count (a session worker may have written its own)."""
    Heartbeat.objects.filter(name__startswith=health.WORKER_HEARTBEAT_PREFIX).delete()


def dashboard_health(admin_client) -> dict:
    return admin_client.get(reverse("mission_control:health")).json()


def health_cell(admin_client, name: str) -> str:
    """The text of one row of the dashboard's health table."""
    page = admin_client.get(reverse("mission_control:index")).content.decode()
    match = re.search(rf'id="mc-health-{name}"[^>]*>(.*?)</td>', page, re.S)
    assert match, page
    return " ".join(match.group(1).split())


def test_workers_are_the_ones_healthz_counts(admin_client, client, no_other_workers):
    stale = timezone.now() - dt.timedelta(seconds=health.WORKER_STALE_AFTER_S + 1)
    Heartbeat.objects.create(name="worker:gone@h", at=stale)
    assert client.get("/healthz?checks=workers").json()["workers"]["ok"] is False
    assert dashboard_health(admin_client)["workers"]["ok"] is False
    assert health_cell(admin_client, "workers") == "none alive"

    Heartbeat.objects.create(name="worker:w1@h", at=timezone.now())
    healthz = client.get("/healthz?checks=workers").json()["workers"]
    assert healthz["alive"] == ["w1@h"]
    assert dashboard_health(admin_client)["workers"] == healthz
    assert health_cell(admin_client, "workers") == "1 alive (w1@h)"


def test_sweep_staleness_follows_health_sweep_stale_s(admin_client, client, settings):
    settings.EVENTING = {**settings.EVENTING, "HEALTH_SWEEP_STALE_S": 5}
    Heartbeat.objects.create(name="sweep", at=timezone.now() - dt.timedelta(seconds=7))
    assert client.get("/healthz?checks=sweep").json()["sweep"]["ok"] is False
    mine = dashboard_health(admin_client)["sweep"]
    assert (mine["ok"], mine["stale_after_s"]) == (False, 5.0)
    assert re.fullmatch(r"\d+ s ago \(stale after 5 s\)", health_cell(admin_client, "sweep"))


def test_broker_answer_is_the_one_healthz_and_check_deploy_got(admin_client, client):
    keys = ("broker_url", "broker_write_url")
    original = {key: app.conf[key] for key in keys}
    app.conf.update(dict.fromkeys(keys, "redis://127.0.0.1:1/0"))  # nothing listens on port 1
    try:
        assert [p.id for p in check_broker()] == ["eventing.W002"]
        assert client.get("/healthz?checks=broker").json()["broker"]["ok"] is False
        assert health_cell(admin_client, "broker") == "unreachable"  # at once: no probe of its own
        assert dashboard_health(admin_client)["broker"]["ok"] is False
    finally:
        app.conf.update(original)


def test_the_page_never_waits_for_the_broker(admin_client):
    answer = threading.Event()

    def slow_probe(now=None, cache=None):
        answer.wait(30)
        cache.at, cache.result = time.monotonic(), {"ok": True}
        return {"ok": True}

    with mock.patch.object(health, "probe_broker", side_effect=slow_probe) as probe:
        assert health_cell(admin_client, "broker") == "checking…"
        assert health_cell(admin_client, "broker") == "checking…"  # one probe at a time
        answer.set()
        wait_until(lambda: health_cell(admin_client, "broker") == "reachable", message="probe")
    assert probe.call_count == 1


def test_chart_is_plain_svg():
    svg = charts.line_chart([("10:00", 0), ("10:01", 4.5), ("10:02", 2)], title="t")
    assert svg.startswith("<svg")
    assert "polyline" in svg
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")
    assert charts.nice_max(4.5) == 5
    assert charts.nice_max(0) == 1
    assert charts.nice_max(120) == 200


def test_chart_counts_each_closed_bucket_once_and_the_open_one_live(
    django_assert_max_num_queries,
):
    cache.clear()
    trigger = TriggerFactory()
    now = timezone.now()
    make_event(trigger, created_ago_s=3 * 3600)
    first = dashboard.day_series(now)
    assert sum(v * 15 for _, v in first) == pytest.approx(1)
    make_event(trigger, created_ago_s=0)
    # The open bucket's count, and one read of the cache when it lives in the database: the
    # 95 closed buckets are kept, not counted again.
    with django_assert_max_num_queries(2):
        again = dashboard.day_series(now)
    assert sum(v * 15 for _, v in again) == pytest.approx(2)
    assert again[:-1] == first[:-1]
