"""Writes signal mode cannot see: each path warns (the default in tests and DEBUG), raises under
"raise" naming the call, stays silent under "ignore" and in database capture mode; the writes
signals do see (save, delete, tables without triggers) never warn."""

from __future__ import annotations

import warnings

import pytest
from django.db import connection, transaction

from eventing.capture import missed_writes
from eventing.capture.missed_writes import MissedWriteError, MissedWriteWarning
from eventing.models import EventLog
from tests.factories import TriggerFactory
from tests.support.capture_db_fixtures import (  # noqa: F401 - fixtures, found by name
    database_mode,
    expanded_before_reading,
)
from tests.testapp.models import Customer, Order, Untracked

pytestmark = pytest.mark.django_db


def update_call():
    return Order.objects.filter(status="new").update(status="paid")


def bulk_create_call():
    return Order.objects.bulk_create([Order(status="bulk"), Order(status="bulk")])


def bulk_update_call():
    orders = list(Order.objects.all())
    for order in orders:
        order.status = "bulk"
    return Order.objects.bulk_update(orders, ["status"])


def raw_call():
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_order SET status = %s WHERE status = %s", ["raw", "new"])
        return cursor.rowcount


def raw_delete_call():
    with connection.cursor() as cursor:
        cursor.execute('DELETE FROM "testapp_order" WHERE status = %s', ["new"])
        return cursor.rowcount


# (the call, what the message names it, the trigger type it misses)
PATHS = [
    pytest.param(update_call, "QuerySet.update()", "DB_UPDATE", id="update"),
    pytest.param(bulk_create_call, "bulk_create()", "DB_INSERT", id="bulk_create"),
    pytest.param(bulk_update_call, "bulk_update()", "DB_UPDATE", id="bulk_update"),
    pytest.param(raw_call, "raw SQL (cursor.execute)", "DB_UPDATE", id="raw_update"),
    pytest.param(raw_delete_call, "raw SQL (cursor.execute)", "DB_DELETE", id="raw_delete"),
]


@pytest.fixture
def orders():
    """Two orders, saved (so the signal-seen inserts happen before any trigger exists)."""
    return [Order.objects.create(status="new"), Order.objects.create(status="new")]


def trigger_for(kind: str):
    return TriggerFactory(name=f"crm_{kind.lower()}", type=kind, source="testapp.Order")


def missed(record) -> list[warnings.WarningMessage]:
    return [w for w in record if issubclass(w.category, MissedWriteWarning)]


@pytest.mark.parametrize(("call", "name", "kind"), PATHS)
def test_each_path_warns_by_default_in_tests_naming_model_call_and_trigger(
    orders, call, name, kind
):
    trigger_for(kind)
    assert missed_writes.missed_writes_mode() == "warn"  # the default under a test runner
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = call()
    found = missed(record)
    assert len(found) == 1, [str(w.message) for w in record]
    text = str(found[0].message)
    assert text.startswith("testapp.Order: ")
    assert name in text
    assert f"crm_{kind.lower()} ({kind})" in text
    assert "eventing_reconcile" in text
    # Attributed to this file (the caller), not to Django or eventing.
    assert found[0].filename == __file__
    # The write itself happened, its result unchanged, and signal mode recorded nothing.
    assert result
    assert not EventLog.objects.exists()


@pytest.mark.parametrize(("call", "name", "kind"), PATHS)
def test_each_path_raises_under_raise_naming_the_call_and_writes_nothing(
    settings, orders, call, name, kind
):
    trigger_for(kind)
    settings.EVENTING = {**settings.EVENTING, "MISSED_WRITES": "raise"}
    before = sorted(Order.objects.values_list("pk", "status"))
    # A savepoint: like any error inside update(), the refusal marks the atomic block broken.
    with pytest.raises(MissedWriteError) as caught, transaction.atomic():
        call()
    assert name in str(caught.value)
    assert "testapp.Order" in str(caught.value)
    assert sorted(Order.objects.values_list("pk", "status")) == before


@pytest.mark.parametrize(("call", "name", "kind"), PATHS)
def test_each_path_is_silent_under_ignore(settings, orders, call, name, kind):
    trigger_for(kind)
    settings.EVENTING = {**settings.EVENTING, "MISSED_WRITES": "ignore"}
    assert missed_writes.watch_writes not in connection.execute_wrappers
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert call()
    assert missed(record) == []


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.usefixtures("database_mode")
@pytest.mark.parametrize(("call", "name", "kind"), PATHS)
def test_database_mode_captures_them_and_stays_silent(orders, call, name, kind):
    trigger_for(kind)
    assert missed_writes.watch_writes not in connection.execute_wrappers
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert call()
    assert missed(record) == []
    assert EventLog.objects.filter(type=kind).exists()


def test_save_delete_and_other_tables_never_warn(orders):
    TriggerFactory(name="all_ins", type="DB_INSERT", source="testapp.Order")
    TriggerFactory(name="all_upd", type="DB_UPDATE", source="testapp.Order")
    TriggerFactory(name="all_del", type="DB_DELETE", source="testapp.Order")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        order = Order.objects.create(status="a")
        order.status = "b"
        order.save()
        Order.objects.update_or_create(pk=order.pk, defaults={"status": "c"})
        order.delete()
        Order.objects.filter(status="new").delete()  # the collector sends the signals
        Untracked.objects.bulk_create([Untracked(value=1)])
        Untracked.objects.update(value=2)
        Order.objects.filter(status="nothing-matches").update(status="x")  # no row changed
    assert missed(record) == []
    assert EventLog.objects.filter(type="DB_DELETE").count() == 3


def test_a_delete_s_set_null_update_is_reported(orders):
    TriggerFactory(name="order_upd", type="DB_UPDATE", source="testapp.Order")
    customer = Customer.objects.create(name="Ada")
    Order.objects.filter(pk=orders[0].pk).update(customer=customer)  # warns, not asserted
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        customer.delete()
    found = missed(record)
    assert len(found) == 1
    assert "on_delete=SET_NULL" in str(found[0].message)
    assert found[0].filename == __file__  # the delete() call here, not Django's collector


@pytest.mark.parametrize(("call", "name", "kind"), PATHS)
def test_outside_tests_debug_decides_and_the_wrapper_follows_it(
    settings, monkeypatch, orders, call, name, kind
):
    trigger_for(kind)
    monkeypatch.setattr(missed_writes, "in_test_environment", lambda: False)
    settings.DEBUG = False  # as a production process: nothing installed, nothing said
    assert missed_writes.watch_writes not in connection.execute_wrappers
    with warnings.catch_warnings(record=True) as record, transaction.atomic():
        warnings.simplefilter("always")
        call()
        transaction.set_rollback(True)
    assert missed(record) == []
    settings.DEBUG = True  # DEBUG on: the open connection gets the wrapper at once
    assert missed_writes.watch_writes in connection.execute_wrappers
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call()
    assert [name in str(w.message) for w in missed(record)] == [True]


def test_default_outside_debug_and_tests_is_ignore(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.setattr(missed_writes, "in_test_environment", lambda: False)
    assert missed_writes.missed_writes_mode() == "ignore"
    assert missed_writes.guard_wanted() is False
    settings.DEBUG = True
    assert missed_writes.missed_writes_mode() == "warn"


def test_written_tables_reads_quoted_bare_qualified_and_cte_targets():
    assert missed_writes.written_tables('UPDATE "testapp_order" SET "status" = %s') == [
        ("UPDATE", "testapp_order")
    ]
    assert missed_writes.written_tables("insert into public.TestApp_Order (status) values (1)") == [
        ("INSERT", "testapp_order")
    ]
    assert missed_writes.written_tables(
        "WITH gone AS (DELETE FROM testapp_order RETURNING id) SELECT count(*) FROM gone"
    ) == [("DELETE", "testapp_order")]
    assert missed_writes.written_tables("TRUNCATE TABLE ONLY testapp_order") == [
        ("TRUNCATE", "testapp_order")
    ]
    assert missed_writes.written_tables("SELECT 1") == []
