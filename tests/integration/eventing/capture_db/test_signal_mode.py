"""What each capture mode sees of writes that bypass model signals (docs/guarantees.md)."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import connection

from eventing.models import EventLog
from tests.factories import TriggerFactory
from tests.support.capture_db import POSTGRES_ONLY, insert_sql, payloads, psql
from tests.testapp.models import Customer, Order, OrderLine

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["signals", "database"])
def mode(request, settings):
    """The test runs once per capture mode (database mode on PostgreSQL only)."""
    if request.param == "database" and connection.vendor != "postgresql":
        pytest.skip("database capture needs PostgreSQL")
    settings.EVENTING = {**settings.EVENTING, "CAPTURE": request.param}
    return request.param


def test_signals_do_not_see_queryset_update_bulk_or_raw_sql(message_per_event):
    for kind in ("DB_INSERT", "DB_UPDATE", "DB_DELETE"):
        TriggerFactory(type=kind, source="testapp.Order")
    orders = Order.objects.bulk_create([Order(status="a"), Order(status="b")])
    Order.objects.update(status="c")
    for order in orders:
        order.note = "bulk"
    Order.objects.bulk_update(orders, ["note"])
    with connection.cursor() as cursor:
        cursor.execute(insert_sql("raw"))
        cursor.execute("UPDATE testapp_order SET note = 'raw'")
    assert Order.objects.filter(note="raw").count() == 3  # the writes happened
    assert not EventLog.objects.exists()  # and signal mode saw none of them


@POSTGRES_ONLY
@pytest.mark.django_db(transaction=True)
def test_signals_do_not_see_another_programs_writes():
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    psql(insert_sql("from psql"))
    assert Order.objects.filter(status="from psql").exists()
    assert not EventLog.objects.exists()


def test_cascades(mode):
    TriggerFactory(type="DB_DELETE", source="testapp.OrderLine")
    TriggerFactory(type="DB_UPDATE", source="testapp.Order")
    customer = Customer.objects.create(name="c")
    order = Order.objects.create(customer=customer)
    OrderLine.objects.create(order=order, sku="a")
    OrderLine.objects.create(order=order, sku="b")
    customer.delete()  # orders: SET_NULL, which Django runs as a queryset update
    order.delete()  # lines: CASCADE, deleted row by row after signals
    assert sorted(d["old"]["sku"] for d in payloads("DB_DELETE")) == ["a", "b"]
    changes = [d["changed"] for d in payloads("DB_UPDATE")]
    assert changes == ([] if mode == "signals" else [["customer"]])


def test_loaddata(mode, tmp_path):
    TriggerFactory(type="DB_INSERT", source="testapp.Customer")
    fixture = tmp_path / "customers.json"
    fixture.write_text(
        json.dumps([{"model": "testapp.customer", "pk": 500, "fields": {"name": "fixture"}}])
    )
    call_command("loaddata", str(fixture), verbosity=0)
    assert Customer.objects.filter(pk=500).exists()
    new_rows = [d["new"] for d in payloads("DB_INSERT")]
    assert new_rows == ([] if mode == "signals" else [{"id": 500, "name": "fixture"}])


@POSTGRES_ONLY
def test_truncate_records_nothing(mode):
    TriggerFactory(type="DB_DELETE", source="testapp.Order")
    Order.objects.create()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # Django defers its foreign keys
        cursor.execute("TRUNCATE testapp_order, testapp_orderline")
    assert not Order.objects.exists()
    assert not EventLog.objects.exists()
