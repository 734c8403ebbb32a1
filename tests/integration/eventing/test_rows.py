"""The hot path's SQL: claims and finishes look rows up by primary key, whatever the planner
believes about the table."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from eventing.models import EventStatus
from eventing.recording.emit import EventRequest, emit_batch
from eventing.store import rows
from tests.factories import TriggerFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner"),
]


def plan_of(run) -> str:
    """EXPLAIN of the last statement `run` executes (planned, not run again)."""
    with CaptureQueriesContext(connection) as captured:
        run()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + captured.captured_queries[-1]["sql"])
        return "\n".join(line for (line,) in cursor.fetchall())


@pytest.fixture
def crowd():
    """Many staged rows of one trigger in a table the planner has no statistics for (the test
    database is never analyzed): the case where it used to walk another index."""
    trigger = TriggerFactory(type="crowd")
    now = timezone.now()
    items = emit_batch([EventRequest("crowd", {"n": n}, now) for n in range(3000)], publish=False)
    return trigger, [item.rows[0] for item in items]


def test_a_claim_looks_its_rows_up_by_primary_key(crowd):
    trigger, events = crowd
    now = timezone.now()
    plan = plan_of(
        lambda: rows.claim_many(
            [events[0].id, events[1].id],
            lease_until=now + dt.timedelta(seconds=30),
            now=now,
            trigger_id=trigger.pk,
        )
    )
    assert "event_logs_pkey" in plan, plan


def test_a_finish_looks_its_rows_up_by_primary_key(crowd):
    trigger, events = crowd
    now = timezone.now()
    [claimed] = rows.claim_many(
        [events[0].id], lease_until=now + dt.timedelta(seconds=30), now=now, trigger_id=trigger.pk
    )
    plan = plan_of(
        lambda: rows.finish_many([claimed.id], attempt=1, changes={"status": EventStatus.PROCESSED})
    )
    assert "event_logs_pkey" in plan, plan


def test_the_claim_still_skips_rows_it_must_not_take(crowd):
    trigger, events = crowd
    now = timezone.now()
    other = TriggerFactory(type="crowd_other")
    lease = now + dt.timedelta(seconds=30)
    # Another trigger's id, a row not yet due, a row already taken: none is claimed.
    assert rows.claim_many([events[0].id], lease_until=lease, now=now, trigger_id=other.pk) == []
    assert rows.claim_many([events[0].id], lease_until=lease, now=now - dt.timedelta(hours=1)) == []
    assert len(rows.claim_many([events[0].id], lease_until=lease, now=now)) == 1
    assert rows.claim_many([events[0].id], lease_until=lease, now=now) == []
