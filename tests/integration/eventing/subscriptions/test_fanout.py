"""Fan-out to owners: emit(owner=…) reaches that owner's subscriptions to the type, no other."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from eventing import emit
from eventing.management.commands.eventing_triggers import export_data
from eventing.models import EventLog, PublicEventType
from eventing.subscriptions import services
from tests.factories import TriggerFactory
from tests.testapp.models import Customer, Order

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    for name in ("invoice_paid", "invoice_voided"):
        PublicEventType.objects.create(name=name, description=name, example={"id": 1})


@pytest.fixture
def owners():
    users = get_user_model().objects
    return users.create_user("alice"), users.create_user("bob")


def test_owner_events_reach_only_that_owners_subscriptions(catalog, owners, deliver_messages):
    alice, bob = owners
    a1, _ = services.create_subscription(alice, url="http://127.0.0.1:9/a1", types=["invoice_paid"])
    a2, _ = services.create_subscription(
        alice, url="http://127.0.0.1:9/a2", types=["invoice_paid", "invoice_voided"]
    )
    services.create_subscription(bob, url="http://127.0.0.1:9/b1", types=["invoice_paid"])
    operators = TriggerFactory(type="invoice_paid")

    rows = emit("invoice_paid", {"id": 7}, owner=alice)

    assert sorted(r.trigger_id for r in rows) == sorted(
        [a1.trigger_id, a2.trigger_id, operators.pk]
    )


def test_without_owner_no_subscription_receives(catalog, owners, deliver_messages):
    alice, _ = owners
    services.create_subscription(alice, url="http://127.0.0.1:9/a1", types=["invoice_paid"])
    operators = TriggerFactory(type="invoice_paid")

    rows = emit("invoice_paid", {"id": 7})

    assert [r.trigger_id for r in rows] == [operators.pk]


def test_subscription_filter_and_enabled(catalog, owners, deliver_messages):
    alice, _ = owners
    paid, _ = services.create_subscription(
        alice, url="http://127.0.0.1:9/a", types=["invoice_paid"], filter={"currency": "EUR"}
    )
    off, _ = services.create_subscription(alice, url="http://127.0.0.1:9/b", types=["invoice_paid"])
    services.update_subscription(off, {"enabled": False})

    assert emit("invoice_paid", {"currency": "USD"}, owner=alice) == []
    assert [r.trigger_id for r in emit("invoice_paid", {"currency": "EUR"}, owner=alice)] == [
        paid.trigger_id
    ]


def test_subscription_trigger_never_matches_by_type(catalog, owners, deliver_messages):
    alice, _ = owners
    sub, _ = services.create_subscription(alice, url="http://127.0.0.1:9/a", types=["invoice_paid"])

    with pytest.raises(ValidationError):
        emit(sub.trigger.type, {})


def test_bad_input_names_the_field(catalog, owners):
    alice, _ = owners
    cases = {
        "url": {"url": "ftp://x", "types": ["invoice_paid"]},
        "types": {"url": "http://127.0.0.1:9/", "types": ["nope"]},
        "filter": {"url": "http://127.0.0.1:9/", "types": ["invoice_paid"], "filter": []},
    }
    for field, kwargs in cases.items():
        with pytest.raises(ValidationError) as info:
            services.create_subscription(alice, **kwargs)
        assert field in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        services.create_subscription(alice, url="http://{{HOOK_X}}/", types=["invoice_paid"])
    assert "url" in info.value.message_dict


def test_owner_cap(catalog, owners, settings):
    settings.EVENTING = {**settings.EVENTING, "OWNER_MAX_SUBSCRIPTIONS": 1}
    alice, bob = owners
    services.create_subscription(alice, url="http://127.0.0.1:9/a", types=["invoice_paid"])
    with pytest.raises(ValidationError) as info:
        services.create_subscription(alice, url="http://127.0.0.1:9/b", types=["invoice_paid"])
    assert "url" in info.value.message_dict
    services.create_subscription(bob, url="http://127.0.0.1:9/c", types=["invoice_paid"])


def test_owned_subscription_is_404_for_another_owner(catalog, owners):
    alice, bob = owners
    sub, _ = services.create_subscription(alice, url="http://127.0.0.1:9/a", types=["invoice_paid"])
    assert services.owned_subscription(alice, sub.pk) == sub
    with pytest.raises(services.Subscription.DoesNotExist):
        services.owned_subscription(bob, sub.pk)
    with pytest.raises(services.Subscription.DoesNotExist):
        services.owned_subscription(bob, "not-a-uuid")


def test_db_events_published_to_the_rows_owner_with_the_chosen_fields(settings, deliver_messages):
    settings.EVENTING = {**settings.EVENTING, "OWNER_MODEL": "testapp.Customer"}
    PublicEventType.objects.create(
        name="order_changed",
        db_type="DB_UPDATE",
        db_source="testapp.Order",
        owner_path="customer",
        payload_fields=["id", "status"],
    )
    acme, globex = Customer.objects.create(name="acme"), Customer.objects.create(name="globex")
    acme_sub, _ = services.create_subscription(
        acme, url="http://127.0.0.1:9/acme", types=["order_changed"]
    )
    services.create_subscription(globex, url="http://127.0.0.1:9/globex", types=["order_changed"])
    order = Order.objects.create(customer=acme, status="new", total="9.99", note="private")

    order.status = "paid"
    order.save()

    [row] = EventLog.objects.filter(type="order_changed")
    assert row.trigger_id == acme_sub.trigger_id
    assert row.payload == {"id": order.pk, "status": "paid"}
    assert row.source == "testapp.Order"


def test_operators_export_leaves_subscriptions_out(catalog, owners):
    alice, _ = owners
    services.create_subscription(alice, url="http://127.0.0.1:9/a", types=["invoice_paid"])
    operators = TriggerFactory(type="invoice_paid")

    assert [t["name"] for t in export_data(include_secrets=False)["triggers"]] == [operators.name]
