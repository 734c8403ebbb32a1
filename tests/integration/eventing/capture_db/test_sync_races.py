"""The first `sync` landing around a database-mode save: each write recorded exactly once.

A save in autocommit has committed before its post_save runs. A `sync` from another connection
that attaches the capture trigger between the two must not make the receivers stand down for a
write the trigger never saw (it was lost), nor may a `sync` just before the write make both
record it. The hook below runs the `sync` at exactly those points, on another connection.
"""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connection, connections

from eventing.capture import database as capture_db
from eventing.capture.database import switch
from eventing.models import EventLog
from tests.factories import TriggerFactory
from tests.support.capture_db import POSTGRES_ONLY
from tests.testapp.models import Order

pytestmark = [POSTGRES_ONLY, pytest.mark.usefixtures("committed_database_mode")]

SYNC_PATIENCE_S = 120


def sync_elsewhere() -> None:
    """`eventing_capture sync` from another connection (another process, as far as we know)."""
    failures = []

    def run() -> None:
        try:
            capture_db.sync()
        except Exception as exc:  # noqa: BLE001 - reported by the test's own thread
            failures.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=SYNC_PATIENCE_S)
    assert not thread.is_alive(), "the sync waited for a lock of the write"
    assert not failures, failures


def sync_around(verb: str, *, after: bool):
    """An execute wrapper: run a sync just before or just after the first `verb` statement on
    testapp_order (in autocommit, after it the write has committed; post_save has not run)."""
    statement = re.compile(rf'^\s*{verb}\b.*"testapp_order"', re.IGNORECASE | re.DOTALL)
    done = []

    def wrapper(execute, sql, params, many, context):
        hit = not done and statement.search(sql)
        if hit and not after:
            done.append(sync_elsewhere())
        result = execute(sql, params, many, context)
        if hit and after:
            done.append(sync_elsewhere())
        return result

    return connection.execute_wrapper(wrapper), done


def recorded(event_type: str) -> list[dict]:
    """Payloads of Order's events of this type, once the captures are expanded."""
    capture_db.expand_all()
    rows = EventLog.objects.filter(type=event_type).order_by("created_at", "id")
    return list(rows.values_list("payload", flat=True))


def unattached(event_type: str) -> None:
    """A trigger of this type whose capture function is not attached yet (before the sync)."""
    TriggerFactory(type=event_type, source="testapp.Order")
    capture_db.drop()
    switch.retell_sessions(setting="EVENTING")  # this process has seen nothing attached


def insert() -> int:
    return Order.objects.create(status="inserted").pk


def update() -> int:
    order = Order.objects.order_by("pk").last()
    order.status = "updated"
    order.save()
    return order.pk


def delete() -> int:
    order = Order.objects.order_by("pk").last()
    pk = order.pk
    order.delete()
    return pk


# The trigger type, the statement the sync lands around, the write.
WRITES = {
    "DB_INSERT": ("INSERT", insert),
    "DB_UPDATE": ("UPDATE", update),
    "DB_DELETE": ("DELETE", delete),
}


@pytest.mark.parametrize(
    ("event_type", "after"),
    [
        pytest.param("DB_INSERT", True, id="insert-after-the-write"),
        pytest.param("DB_UPDATE", True, id="update-after-the-write"),
        pytest.param("DB_INSERT", False, id="insert-before-the-write"),
        pytest.param("DB_UPDATE", False, id="update-before-the-write"),
        # Django deletes in a transaction of its own, post_delete included: a sync cannot land
        # after the DELETE before post_delete (it waits for the table's lock).
        pytest.param("DB_DELETE", False, id="delete-before-the-write"),
    ],
)
def test_a_sync_around_an_autocommit_write_records_it_once(event_type, after):
    """The after-the-write cases failed before: post_save read the catalog, found the trigger
    the sync had just attached, and stood down for a write the trigger never saw (0 events)."""
    assert connection.get_autocommit()
    verb, write = WRITES[event_type]
    Order.objects.create(status="first")
    unattached(event_type)
    hook, done = sync_around(verb, after=after)
    with hook:
        first = write()
    assert len(done) == 1  # the sync ran at that point
    assert [line.state for line in capture_db.capture_status()] == [capture_db.OK]
    assert [p["pk"] for p in recorded(event_type)] == [first]

    # Later writes are the trigger function's alone, once each.
    if event_type != "DB_INSERT":
        Order.objects.create(status="second")  # a row to update or delete
    second = write()
    assert sorted(p["pk"] for p in recorded(event_type)) == sorted([first, second])


def test_a_function_that_does_not_mark_sessions_is_trusted_as_before():
    """One installed by the previous release (no session marks) until `sync` replaces it: the
    receivers stand down for a table it is attached to, so no write is recorded twice."""
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    switch.retell_sessions(setting="EVENTING")
    (plan,) = capture_db.wanted_functions("default").plans.values()
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [plan.function])
        (source,) = cursor.fetchone()
        unmarking = re.sub(r"\n  marks_ :=.*?END IF;\n", "\n", source, flags=re.DOTALL)
        assert "eventing.captured" not in unmarking
        cursor.execute(plan.definition.replace(source, unmarking))
    Order.objects.create(status="once")
    assert [p["new"]["status"] for p in recorded("DB_INSERT")] == ["once"]
