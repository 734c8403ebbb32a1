"""The store's predicates: one rule, several forms, the same answer."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from eventing import emit
from eventing.models import EventLog, EventStatus
from eventing.store.predicates import Sql, not_blocked, not_blocked_sql, queue_position
from tests.factories import TriggerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def mixed_key():
    """One key's rows in every position of its queue: a retrying row, rows due at different
    times (one far ahead), a finished one; and an unordered row."""
    TriggerFactory(type="order_changed", ordering_key="order.id")
    TriggerFactory(type="plain")
    now = timezone.now()
    rows = [emit("order_changed", {"order": {"id": 1}, "n": n})[0] for n in range(5)]
    EventLog.objects.filter(id=rows[0].id).update(status=EventStatus.PROCESSED)
    EventLog.objects.filter(id=rows[1].id).update(deliver_at=now + dt.timedelta(days=300))
    EventLog.objects.filter(id=rows[3].id).update(deliver_at=now - dt.timedelta(minutes=1))
    EventLog.objects.filter(id=rows[4].id).update(attempts=1)
    [plain] = emit("plain", {})
    return rows, plain


def sent_first(rows) -> set:
    """What the Python form says: the first row of each key's unfinished queue."""
    unfinished = [r for r in rows if r.status in ("intent", "staged", "processing")]
    first = min(unfinished, key=queue_position)
    return {first.id}


def test_sql_orm_and_python_forms_agree(mixed_key):
    rows, plain = mixed_key
    # The rule is about unfinished rows (every caller asks it of staged ones).
    ids = [r.id for r in rows[1:]] + [plain.id]
    by_orm = set(EventLog.objects.filter(not_blocked(), id__in=ids).values_list("id", flat=True))

    sql = Sql(connection.ops.quote_name, literal=True)
    text = f"SELECT e.id FROM event_logs AS e WHERE {not_blocked_sql(sql, 'e', 'a')}"
    with connection.cursor() as cursor:
        cursor.execute(text)
        by_sql = {EventLog._meta.pk.to_python(row[0]) for row in cursor.fetchall()} & set(ids)

    fresh = list(EventLog.objects.filter(id__in=[r.id for r in rows]))
    expected = sent_first(fresh) | {plain.id}
    assert by_orm == by_sql == expected
    # The retrying row goes first; the row due a minute ago next; the one due in 300 days last.
    assert sent_first(fresh) == {rows[4].id}
