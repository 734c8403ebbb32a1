"""Database mode with an actor set, in autocommit: Django gets each statement's own results back.

These writes commit (no test transaction around them), as a management command's or a
request's do, so `pass_actor` runs in its autocommit branch.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction

import eventing
from eventing.capture import database as capture_db
from eventing.models import EventLog
from tests.factories import TriggerFactory
from tests.support.capture_db import POSTGRES_ONLY
from tests.testapp.models import Document, Order

pytestmark = [POSTGRES_ONLY, pytest.mark.usefixtures("committed_database_mode")]


def events(event_type: str) -> list[dict]:
    """Payloads of Order's events of one type, after expanding the captures (as the listener
    does), in the order of the statements and, within one, of the primary keys."""
    capture_db.expand_all()
    rows = EventLog.objects.filter(type=event_type, source="testapp.Order")
    rows = sorted(rows, key=lambda row: (row.created_at, row.payload["pk"]))
    return [row.payload for row in rows]


@pytest.fixture
def all_triggers(committed_database_mode):
    for kind in ("DB_INSERT", "DB_UPDATE", "DB_DELETE"):
        TriggerFactory(name=f"order_{kind.lower()}", type=kind, source="testapp.Order")
    TriggerFactory(name="document_insert", type="DB_INSERT", source="testapp.Document")


@pytest.mark.usefixtures("all_triggers")
def test_create_returns_its_primary_key_and_the_event_its_actor():
    assert connection.get_autocommit()
    assert not connection.in_atomic_block
    with eventing.actor("billing-job"):
        first = Order.objects.create(status="a")
        second = Order.objects.create(status="b")
    assert isinstance(first.pk, int)
    assert second.pk == first.pk + 1
    assert [(e["pk"], e["actor"]) for e in events("DB_INSERT")] == [
        (first.pk, "billing-job"),
        (second.pk, "billing-job"),
    ]


@pytest.mark.usefixtures("all_triggers")
def test_update_returns_the_rows_it_matched_zero_one_and_many():
    Order.objects.bulk_create(Order(status="new") for _ in range(25))
    with eventing.actor("cashier"):
        assert Order.objects.filter(status="none").update(status="x") == 0
        one = Order.objects.order_by("pk").first()
        assert Order.objects.filter(pk=one.pk).update(status="one") == 1
        assert Order.objects.filter(status="new").update(status="many") == 24
    updates = events("DB_UPDATE")
    assert len(updates) == 25
    assert {e["actor"] for e in updates} == {"cashier"}
    assert sorted(e["new"]["status"] for e in updates) == ["many"] * 24 + ["one"]


@pytest.mark.usefixtures("all_triggers")
def test_save_of_a_new_explicit_primary_key_inserts_the_row():
    """Django's save() tries UPDATE first and INSERTs when it matched no row (rowcount 0)."""
    with eventing.actor("importer"):
        Order(pk=4242, status="imported").save()
        document = Document(title="spec")
        document.save()
    assert Order.objects.filter(pk=4242, status="imported").exists()
    assert Document.objects.filter(pk=document.pk).exists()
    assert [(e["pk"], e["actor"]) for e in events("DB_INSERT")] == [(4242, "importer")]
    documents = EventLog.objects.filter(trigger_name="document_insert")
    assert [(e.payload["pk"], e.payload["actor"]) for e in documents] == [
        (str(document.pk), "importer")
    ]


@pytest.mark.usefixtures("all_triggers")
def test_delete_returns_its_counts():
    Order.objects.bulk_create(Order(status="old") for _ in range(3))
    with eventing.actor("cleaner"):
        one = Order.objects.first()
        assert one.delete() == (1, {"testapp.Order": 1})
        assert Order.objects.filter(status="old").delete() == (2, {"testapp.Order": 2})
        assert Order.objects.filter(status="none").delete() == (0, {})
    deletes = events("DB_DELETE")
    assert len(deletes) == 3
    assert {e["actor"] for e in deletes} == {"cleaner"}


@pytest.mark.usefixtures("all_triggers")
def test_bulk_create_returns_primary_keys_and_get_or_create_its_flag():
    with eventing.actor("loader"):
        made = Order.objects.bulk_create(Order(status=f"s{n}") for n in range(5))
        found, created = Order.objects.get_or_create(status="s2")
        fresh, was_created = Order.objects.get_or_create(status="brand-new")
    assert all(isinstance(o.pk, int) for o in made)
    assert (found.pk, created) == (made[2].pk, False)
    assert was_created
    assert isinstance(fresh.pk, int)
    inserts = events("DB_INSERT")
    assert [e["pk"] for e in inserts] == [o.pk for o in made] + [fresh.pk]
    assert {e["actor"] for e in inserts} == {"loader"}


def create_then_fail() -> None:
    """An order created in a transaction that is rolled back."""
    with transaction.atomic():
        Order.objects.create(status="rolled-back")
        raise RuntimeError


@pytest.mark.usefixtures("all_triggers")
def test_actors_change_between_writes_and_a_rolled_back_transaction_leaves_none_behind():
    with eventing.actor("first"):
        a = Order.objects.create(status="a")
    b = Order.objects.create(status="b")  # nobody known: not attributed to "first"
    with eventing.actor("second"), pytest.raises(RuntimeError):
        create_then_fail()
    with transaction.atomic():
        c = Order.objects.create(status="c")  # after the rollback: still nobody
        with eventing.actor("third"):
            d = Order.objects.create(status="d")
        e = Order.objects.create(status="e")  # back to nobody, same transaction
    with eventing.actor("first"):
        f = Order.objects.create(status="f")
    got = [(p["pk"], p.get("actor")) for p in events("DB_INSERT")]
    assert got == [
        (a.pk, "first"),
        (b.pk, None),
        (c.pk, None),
        (d.pk, "third"),
        (e.pk, None),
        (f.pk, "first"),
    ]


def test_the_wrapper_is_installed_only_in_database_mode(settings):
    """Signal mode never reads the setting: its connections carry no wrapper at all."""
    from eventing.capture.actor import pass_actor

    connection.ensure_connection()
    assert pass_actor in connection.execute_wrappers
    settings.EVENTING = {**settings.EVENTING, "CAPTURE": "signals"}
    assert pass_actor not in connection.execute_wrappers
    connection.close()
    connection.ensure_connection()
    assert pass_actor not in connection.execute_wrappers
    settings.EVENTING = {**settings.EVENTING, "CAPTURE": "database"}
    assert pass_actor in connection.execute_wrappers
