"""Mission Control lists every owner's subscriptions with the owner, and filters by owner."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from eventing.models import PublicEventType
from eventing.subscriptions import services

pytestmark = pytest.mark.django_db

CHANGELIST = "mission_control:eventing_subscription_changelist"


@pytest.fixture
def subscriptions():
    PublicEventType.objects.create(name="invoice_paid")
    users = get_user_model().objects
    made = {}
    for name in ("carol", "dave"):
        owner = users.create_user(name)
        for n in range(2):
            sub, _ = services.create_subscription(
                owner, url=f"http://127.0.0.1:9/{name}/{n}", types=["invoice_paid"]
            )
            made.setdefault(name, []).append(sub)
    return made


def test_changelist_shows_every_subscription_with_its_owner(admin_client, subscriptions):
    body = admin_client.get(reverse(CHANGELIST)).content.decode()

    for name, subs in subscriptions.items():
        assert f"{name} (auth.User" in body
        for sub in subs:
            assert sub.trigger.url in body


def test_filter_by_owner(admin_client, subscriptions):
    carol = subscriptions["carol"][0]
    response = admin_client.get(
        reverse(CHANGELIST), {"owner": f"{carol.owner_model}:{carol.owner_id}"}
    )
    body = response.content.decode()

    assert response.status_code == 200
    assert "http://127.0.0.1:9/carol/0" in body
    assert "http://127.0.0.1:9/carol/1" in body
    assert "http://127.0.0.1:9/dave/" not in body


def test_bad_owner_filter_is_refused_not_a_500(admin_client, subscriptions):
    response = admin_client.get(reverse(CHANGELIST), {"owner": "not an owner"})
    assert response.status_code in (200, 302, 400)
    assert "http://127.0.0.1:9/dave/0" not in response.content.decode()


def test_owner_column_costs_no_query_per_row(admin_client, subscriptions):
    with CaptureQueriesContext(connection) as few:
        admin_client.get(reverse(CHANGELIST))
    more = get_user_model().objects.create_user("erin")
    for n in range(3):
        services.create_subscription(more, url=f"http://127.0.0.1:9/e/{n}", types=["invoice_paid"])
    with CaptureQueriesContext(connection) as many:
        admin_client.get(reverse(CHANGELIST))
    assert len(many) == len(few)


def test_catalog_entry_with_db_rule_needs_its_payload(admin_client):
    response = admin_client.post(
        reverse("mission_control:eventing_publiceventtype_add"),
        {
            "name": "order_paid",
            "version": "1",
            "public": "on",
            "db_type": "DB_UPDATE",
            "db_source": "testapp.Order",
            "owner_path": "customer_id",
            "payload_fields": "[]",
            "schema": "null",
            "example": "null",
        },
    )
    assert response.status_code == 200
    assert "List the fields sent to owners" in response.content.decode()
    assert not PublicEventType.objects.filter(name="order_paid").exists()
