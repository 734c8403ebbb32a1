"""The owners' API: each owner acts on its own subscriptions only; bad input names the field."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from eventing.models import EventLog, PublicEventType, Subscription
from tests.support.owner_routes import owner_routes

pytestmark = pytest.mark.django_db

LIST = "/api/eventing/subscriptions/"


@pytest.fixture
def catalog():
    PublicEventType.objects.create(
        name="invoice_paid",
        description="An invoice was paid.",
        schema={"type": "object", "properties": {"id": {"type": "integer"}}},
        example={"id": 1},
        version="2",
    )
    PublicEventType.objects.create(name="internal_only", public=False)


def client_of(name: str) -> APIClient:
    client = APIClient()
    client.force_login(get_user_model().objects.create_user(name))
    return client


@pytest.fixture
def alice() -> APIClient:
    return client_of("alice")


@pytest.fixture
def bob() -> APIClient:
    return client_of("bob")


def subscribe(client: APIClient, url: str, **extra) -> dict:
    response = client.post(LIST, {"url": url, "types": ["invoice_paid"], **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_shows_the_secret_once(catalog, alice, receiver):
    created = subscribe(alice, receiver.url("/ok"), description="billing")

    assert created["secret"].startswith("whsec_")
    assert created["types"] == ["invoice_paid"]
    shown = alice.get(f"{LIST}{created['id']}/").json()
    assert "secret" not in shown
    assert shown["description"] == "billing"
    assert [s["id"] for s in alice.get(LIST).json()["results"]] == [created["id"]]


def test_catalog_lists_public_types_only(catalog, alice):
    entries = alice.get("/api/eventing/catalog/").json()

    assert entries == [
        {
            "name": "invoice_paid",
            "description": "An invoice was paid.",
            "version": "2",
            "schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
            "example": {"id": 1},
        }
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/", "types": ["invoice_paid"]}, "url"),
        ({"url": "http://{{HOOK_URL}}/", "types": ["invoice_paid"]}, "url"),
        ({"url": "http://10.1.2.3/hook", "types": ["invoice_paid"]}, "url"),
        ({"url": "http://127.0.0.1:9/", "types": []}, "types"),
        ({"url": "http://127.0.0.1:9/", "types": ["internal_only"]}, "types"),
        ({"url": "http://127.0.0.1:9/", "types": ["invoice_paid"], "filter": {"": 1}}, "filter"),
        ({"types": ["invoice_paid"]}, "url"),
    ],
)
def test_bad_input_is_400_naming_the_field(catalog, alice, body, field):
    response = alice.post(LIST, body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.content.decode()
    # Owners may not use placeholders, so no message may suggest them.
    assert "ENV_VAR" not in response.content.decode()
    assert Subscription.objects.count() == 0


def test_patch_changes_url_types_and_enabled(catalog, alice, receiver):
    created = subscribe(alice, receiver.url("/ok"))

    response = alice.patch(
        f"{LIST}{created['id']}/",
        {"url": receiver.url("/other"), "enabled": False},
        format="json",
    )

    assert response.status_code == 200, response.content
    subscription = Subscription.objects.select_related("trigger").get(pk=created["id"])
    assert subscription.trigger.url == receiver.url("/other")
    assert subscription.enabled is False
    assert subscription.trigger.enabled is False


def test_no_owner_no_access(catalog):
    assert APIClient().get(LIST).status_code in (401, 403)


def test_rotate_secret_then_both_sign(catalog, alice, receiver):
    created = subscribe(alice, receiver.url("/ok"))
    old = created["secret"]

    rotated = alice.post(f"{LIST}{created['id']}/rotate-secret/").json()
    sent = alice.post(f"{LIST}{created['id']}/test/", {}, format="json").json()

    assert rotated["secret"] != old
    assert rotated["previous_valid_until"] is not None
    assert sent["delivered"] is True
    [request] = receiver.wait_for("/ok")
    for secret in (old, rotated["secret"]):
        assert Webhook(secret).verify(request.body, request.headers) == request.json()


def test_every_owner_route_answers_404_to_another_owner(catalog, alice, bob, receiver):
    """Routes come from the URLconf: a route added later is walked too."""
    created = subscribe(alice, receiver.url("/ok"))
    sent = alice.post(f"{LIST}{created['id']}/test/", {}, format="json").json()
    values = {"pk": created["id"], "id": created["id"], "event_id": sent["event"]["id"]}
    routes = [r for r in owner_routes() if r.kwargs]
    walked = {(r.path, m) for r in routes for m in r.methods}
    # The routes the API has today are all in the walk (and so any added later are too).
    assert {
        ("api/eventing/subscriptions/(?P<pk>[^/.]+)/", "get"),
        ("api/eventing/subscriptions/(?P<pk>[^/.]+)/", "patch"),
        ("api/eventing/subscriptions/(?P<pk>[^/.]+)/", "delete"),
        ("api/eventing/subscriptions/(?P<pk>[^/.]+)/rotate-secret/", "post"),
        ("api/eventing/subscriptions/(?P<pk>[^/.]+)/test/", "post"),
        ("api/eventing/subscriptions/(?P<pk>[^/.]+)/deliveries/", "get"),
        (
            "api/eventing/subscriptions/(?P<pk>[^/.]+)/deliveries/(?P<event_id>[^/.]+)/redeliver/",
            "post",
        ),
    } <= walked

    for route in routes:
        url = reverse(route.name, kwargs={k: values[k] for k in route.kwargs})
        for method in route.methods:
            response = getattr(bob, method)(url, {}, format="json")
            assert response.status_code == 404, (method, url, response.content)
    # Nothing of Alice's changed, and Bob's list holds none of it.
    subscription = Subscription.objects.select_related("trigger").get(pk=created["id"])
    assert subscription.trigger.signing_secret == created["secret"]
    assert EventLog.objects.filter(trigger_id=subscription.trigger_id).count() == 1
    assert bob.get(LIST).json()["results"] == []
    # The same routes answer Alice (they exist; only the owner differs); DELETE last.
    calls = sorted(((r, m) for r in routes for m in r.methods), key=lambda c: c[1] == "delete")
    for route, method in calls:
        url = reverse(route.name, kwargs={k: values[k] for k in route.kwargs})
        response = getattr(alice, method)(url, {}, format="json")
        assert response.status_code < 300, (method, url, response.content)


def test_deliveries_list_attempts_and_redeliver(catalog, alice, receiver):
    created = subscribe(alice, receiver.url("/ok"))
    sent = alice.post(f"{LIST}{created['id']}/test/", {}, format="json").json()

    page = alice.get(f"{LIST}{created['id']}/deliveries/").json()
    [delivery] = page["results"]
    assert delivery["id"] == sent["event"]["id"]
    assert delivery["status"] == "processed"
    assert [a["attempt"] for a in delivery["invocations"]] == [1]

    again = alice.post(f"{LIST}{created['id']}/deliveries/{delivery['id']}/redeliver/")
    assert again.status_code == 202
    assert again.json()["status"] == "staged"
    busy = alice.post(f"{LIST}{created['id']}/deliveries/{delivery['id']}/redeliver/")
    assert busy.status_code == 409
