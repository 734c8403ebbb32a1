"""A write stores one capture per statement; expanding captures into events is exactly once."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection, connections, transaction

from eventing.capture import database as capture_db
from eventing.models import EventCapture, EventLog
from tests.factories import TriggerFactory
from tests.processes import workers_parked
from tests.support.capture_db import POSTGRES_ONLY, payloads
from tests.testapp.models import Customer, Order

pytestmark = [POSTGRES_ONLY]


@pytest.mark.django_db
@pytest.mark.usefixtures("database_mode")
def test_a_statement_writes_one_capture_whatever_its_rows_and_triggers():
    first = TriggerFactory(name="a", type="DB_UPDATE", source="testapp.Order")
    second = TriggerFactory(name="b", type="DB_UPDATE", source="testapp.Order")
    Order.objects.bulk_create(Order(status="new", quantity=n) for n in range(3))
    assert Order.objects.update(status="paid") == 3

    (capture,) = EventCapture.objects.all()
    assert (capture.table, capture.kind) == ("testapp_order", "update")
    assert capture.trigger_ids == sorted([first.pk, second.pk])
    assert sorted(row["quantity"] for row in json.loads(capture.old_rows)) == [0, 1, 2]
    assert {row["status"] for row in json.loads(capture.new_rows)} == {"paid"}
    # Expanded (here by the read, in the test's transaction; after commit by the listener):
    # one event per row and trigger, one batch, and the capture gone.
    assert len(payloads("DB_UPDATE")) == 6
    assert EventLog.objects.values("batch_id").distinct().count() == 1
    assert not EventCapture.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("database_mode")
def test_a_statement_that_writes_no_row_captures_nothing():
    TriggerFactory(type="DB_UPDATE", source="testapp.Order")
    assert Order.objects.filter(status="none such").update(note="x") == 0
    assert not EventCapture.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("database_mode")
def test_an_expansion_that_dies_before_commit_leaves_the_capture_for_the_next():
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    Order.objects.create(status="once")

    def expand_then_die() -> None:
        with transaction.atomic():
            assert capture_db.expand_captures().captures == 1
            raise RuntimeError("the process dies before the expansion commits")

    with pytest.raises(RuntimeError):
        expand_then_die()
    assert EventCapture.objects.count() == 1
    assert capture_db.expand_captures().captures == 1
    assert capture_db.expand_captures().captures == 0
    assert [d["new"]["status"] for d in payloads("DB_INSERT")] == ["once"]


@pytest.mark.django_db
@pytest.mark.usefixtures("database_mode")
def test_a_capture_whose_expander_fails_is_kept_and_the_others_expand():
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    TriggerFactory(type="DB_INSERT", source="testapp.Customer")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION eventing_capture_expand_insert_testapp_order"
            "(c event_captures) RETURNS uuid LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'broken'; END $$"
        )
    Order.objects.create(status="kept")
    Customer.objects.create(name="expanded")

    done = capture_db.expand_all()
    assert done.captures == 1
    assert EventCapture.objects.get().table == "testapp_order"
    assert [d["model"] for d in payloads("DB_INSERT")] == ["testapp.Customer"]
    # Reinstalled, the expander takes the capture it left.
    capture_db.drop()
    capture_db.sync()
    capture_db.expand_all()
    assert not EventCapture.objects.exists()
    assert sorted(d["model"] for d in payloads("DB_INSERT")) == [
        "testapp.Customer",
        "testapp.Order",
    ]


def expand_until_none_left(taken: list[int], failures: list[BaseException]) -> None:
    """Expand in small passes until there is nothing left, from this thread's connection."""
    try:
        while True:
            done = capture_db.expand_captures(limit=5)
            taken.append(done.captures)
            if not done.captures and not EventCapture.objects.exists():
                return
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        failures.append(exc)
    finally:
        connections.close_all()


@pytest.mark.usefixtures("committed_database_mode")
def test_expanders_running_at_once_expand_each_capture_once():
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    with workers_parked():  # no other sweeper or listener takes captures meanwhile
        for n in range(60):
            Order.objects.create(status=f"n{n}")  # autocommit: one capture each
        assert EventCapture.objects.count() == 60
        taken: list[list[int]] = [[], []]
        failures: list[BaseException] = []
        threads = [
            threading.Thread(target=expand_until_none_left, args=(part, failures)) for part in taken
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert sum(taken[0]) + sum(taken[1]) == 60
    statuses = sorted(d["new"]["status"] for d in payloads("DB_INSERT"))
    assert statuses == sorted(f"n{n}" for n in range(60))
