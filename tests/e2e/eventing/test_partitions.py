"""Time-range partitions of the event tables on real PostgreSQL: enable on a table with rows,
write across partition boundaries, beat creates partitions ahead, cleanup drops a whole old
partition and keeps every other row, and a real worker still delivers."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, models
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from eventing import emit
from eventing.migration_operations import AddIndexConcurrently
from eventing.models import EventLog, EventStatus, InvocationLog
from eventing.ops import partitions
from eventing.ops.retention import delete_expired
from eventing.tasks import partitions_ahead
from tests.factories import TriggerFactory
from tests.processes import workers_parked
from tests.support.mission_control import make_event
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL partitioning"),
    pytest.mark.django_db(transaction=True),
]
DAY = 86400


@pytest.fixture
def partitioned(transactional_db):
    """Partitioned event tables, daily from 40 days ago; plain tables again afterwards."""
    old = make_event(TriggerFactory(name="before"), created_ago_s=50 * DAY)
    start = partitions.start_of_day(timezone.now()) - dt.timedelta(days=40)
    partitions.enable(start=start)
    yield old
    partitions.disable()


@pytest.fixture
def no_worker():
    """No Celery process of the session runs: a staged row stays staged. (The session worker's
    sweeper once delivered the test's staged row mid-test; failed, 34 days old, it was then
    dropped with its partition, and its new invocation row broke the foreign key.)"""
    with workers_parked():
        yield


def partition_of(event: EventLog) -> str:
    """The partition holding `event`'s row."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM event_logs WHERE id = %s", [event.pk])
        return cursor.fetchone()[0]


def test_enable_keeps_the_rows_and_new_rows_land_by_time(partitioned):
    assert partitions.is_partitioned("event_logs")
    assert partitions.is_partitioned("invocation_logs")
    assert partition_of(partitioned) == "event_logs_p_before"
    assert EventLog.objects.get(pk=partitioned.pk).trigger_name == "before"
    trigger = TriggerFactory(name="now", type="partition_now")
    [fresh] = emit(trigger.type, {"n": 1})
    today = partitions.start_of_day(timezone.now())
    assert partition_of(fresh) == partitions.partition_name("event_logs", today)
    # An update of created_at moves the row across a partition boundary.
    moved = make_event(trigger, created_ago_s=35 * DAY)
    day = partitions.start_of_day(moved.created_at)
    assert partition_of(moved) == partitions.partition_name("event_logs", day)
    assert EventLog.objects.count() == 3
    # Idempotency still answers with the first rows.
    first = emit(trigger.type, {"n": 2}, idempotency_key="k-1")
    assert emit(trigger.type, {"n": 2}, idempotency_key="k-1") == first


def test_beat_creates_the_partitions_ahead(partitioned):
    newest = [p for p in partitions.partitions("event_logs") if not p.default][-1]
    assert newest.upper >= timezone.now() + partitions.AHEAD
    later = timezone.now() + dt.timedelta(days=10)
    created = partitions.create_ahead(now=later)
    assert len(created) == 2 * 10  # ten days, both tables
    newest = [p for p in partitions.partitions("invocation_logs") if not p.default][-1]
    assert newest.upper >= later + partitions.AHEAD
    assert partitions_ahead() == []  # the beat task: nothing more to do today


def test_cleanup_drops_old_partitions_and_keeps_other_rows(no_worker, partitioned, settings):
    settings.EVENTING = {
        **settings.EVENTING,
        "RETENTION": {"processed": 7, "failed": 30, "cancelled": 7},
    }
    trigger = TriggerFactory(name="kept")
    expired = make_event(trigger, EventStatus.PROCESSED, created_ago_s=36 * DAY)
    waiting = make_event(trigger, EventStatus.STAGED, created_ago_s=34 * DAY)
    failed_recent = make_event(trigger, EventStatus.FAILED, created_ago_s=20 * DAY)
    processed_week = make_event(trigger, EventStatus.PROCESSED, created_ago_s=8 * DAY)
    fresh = make_event(trigger, EventStatus.PROCESSED, created_ago_s=60)
    InvocationLog.objects.create(
        event=fresh, attempt=1, invoked_at=timezone.now(), duration_ms=1, request={}
    )
    # A redelivery of the expired event today: its invocation sits in today's partition, which
    # the drop does not reach; left behind it would name an event that no longer exists.
    late = InvocationLog.objects.create(
        event=expired, attempt=2, invoked_at=timezone.now(), duration_ms=1, request={}
    )
    expired_partition = partition_of(expired)
    report = delete_expired()
    assert report["partitions_dropped"] >= 2  # the partition before the cut-over, and more
    remaining = {str(pk) for pk in EventLog.objects.values_list("pk", flat=True)}
    assert str(expired.pk) not in remaining
    assert str(partitioned.pk) not in remaining
    # Unfinished rows keep their partition; younger finished rows follow their own retention.
    assert {str(waiting.pk), str(failed_recent.pk), str(fresh.pk)} <= remaining
    assert str(processed_week.pk) not in remaining  # processed past 7 days: deleted row by row
    names = {p.name for p in partitions.partitions("event_logs")}
    assert expired_partition not in names
    assert partition_of(waiting) in names
    assert InvocationLog.objects.filter(event=fresh).count() == 1
    assert not InvocationLog.objects.filter(pk=late.pk).exists()


def test_a_later_index_migration_builds_on_every_partition(partitioned):
    index = models.Index(fields=["source", "created_at"], name="event_logs_source_test")
    operation = AddIndexConcurrently(model_name="eventlog", index=index)
    state = MigrationLoader(connection).project_state()
    after = state.clone()
    operation.state_forwards("eventing", after)
    with connection.schema_editor(atomic=False) as editor:
        operation.database_forwards("eventing", editor, state, after)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), bool_and(x.indisvalid) FROM pg_inherits AS i "
                "JOIN pg_index AS x ON x.indexrelid = i.inhrelid "
                "WHERE i.inhparent = to_regclass('event_logs_source_test')"
            )
            attached, valid = cursor.fetchone()
        assert attached == len(partitions.partitions("event_logs"))
        assert valid
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX event_logs_source_test")


def test_commands_report_partitions(partitioned):
    out = StringIO()
    call_command("eventing_partitions", "status", stdout=out)
    assert "event_logs_p_before" in out.getvalue()
    assert "event_logs_p_default: default" in out.getvalue()
    out = StringIO()
    call_command("eventing_cleanup", stdout=out)
    # Past the longest retention (30 days): the partition before the cut-over and the daily
    # ones of days 40 to 31 ago, of both tables.
    dropped = re.search(r"dropped (\d+) partition\(s\)", out.getvalue())
    assert dropped, out.getvalue()
    assert int(dropped[1]) >= 2 * 10
    assert "event_logs_p_before" not in {p.name for p in partitions.partitions("event_logs")}


@pytest.mark.e2e
def test_a_worker_delivers_into_partitioned_tables(partitioned, worker, receiver):
    trigger = TriggerFactory(
        name="partitioned_hook", type="partition_hook", url=receiver.url("/partitioned")
    )
    [event] = emit(trigger.type, {"hello": "partitions"})
    body = receiver.wait_for("/partitioned")[0].json()
    assert body["id"] == str(event.pk)
    wait_until(lambda: EventLog.objects.get(pk=event.pk).status == EventStatus.PROCESSED)
    invocation = InvocationLog.objects.get(event_id=event.pk)
    assert invocation.succeeded
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM invocation_logs WHERE id = %s", [invocation.pk]
        )
        today = partitions.start_of_day(invocation.invoked_at)
        assert cursor.fetchone()[0] == partitions.partition_name("invocation_logs", today)
