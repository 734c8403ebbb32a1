"""Mission Control: the transform preview view and the backfill dialog's endpoints and action."""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User

from eventing.models import EventLog
from eventing.webhooks.scrubbing import REDACTED
from mission_control.backfill import SendToDBTriggerMixin, dialog_link, send_to_db_trigger
from tests.factories import TriggerFactory
from tests.support.mission_control import make_event
from tests.testapp.models import Order
from triggers.models import Trigger

pytestmark = pytest.mark.django_db

PREVIEW = "/mission-control/triggers/trigger/preview/"
COUNT = "/mission-control/backfill/count/"
BATCH = "/mission-control/backfill/batch/"


def post(client, url: str, body: dict):
    return client.post(url, json.dumps(body), content_type="application/json")


def test_preview_renders_the_request_over_a_sample_without_sending(admin_client, receiver):
    fields = {
        "url": receiver.url("/ok"),
        "transform_method": "PUT",
        "transform_url": "{{ base_url }}/items/{{ data.id }}",
        "transform_query": '{"kind": "{{ type }}"}',
        "transform_headers": '{"X-Item": "{{ data.id }}"}',
        "transform_body": '{"item": {{ data.id }}}',
    }
    reply = post(admin_client, PREVIEW, {"fields": fields, "sample": '{"id": 5}'}).json()
    assert reply["method"] == "PUT"
    assert reply["url"] == receiver.url("/ok/items/5?kind=preview")
    assert reply["headers"]["X-Item"] == "5"
    assert reply["headers"]["webhook-signature"] == REDACTED
    assert json.loads(reply["body"]) == {"item": 5}
    assert receiver.requests == []  # rendered, never sent


def test_preview_names_the_failing_template_and_uses_the_latest_event(admin_client):
    trigger = TriggerFactory(type="order_placed", url="https://h.example.com/")
    broken = post(
        admin_client,
        PREVIEW,
        {"trigger": trigger.pk, "fields": {"transform_body": '{"a": {{ data.a }'}},
    ).json()
    assert broken["error"].startswith("transform_body: line 1")

    make_event(trigger, payload={"a": 1})
    missing = post(
        admin_client,
        PREVIEW,
        {"trigger": trigger.pk, "fields": {"transform_body": '{"b": {{ data.b }}}'}},
    ).json()
    assert "Request transform failed: body template" in missing["error"]
    assert "latest event" in missing["event"]


def test_preview_is_for_staff_who_may_edit_triggers(client):
    assert post(client, PREVIEW, {}).status_code == 302  # to the login page
    User.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    client.login(username="viewer", password="pw-viewer-123")
    assert post(client, PREVIEW, {}).status_code == 403


def test_backfill_counts_then_sends_batches_resumably(admin_client, deliver_messages):
    TriggerFactory(name="orders_sync", type="DB_UPDATE", source="testapp.Order")
    Order.objects.bulk_create(Order(status="paid" if i % 2 else "new") for i in range(7))
    selection = {"trigger": "orders_sync", "filters": "status=paid\n"}

    assert post(admin_client, COUNT, selection).json() == {"trigger": "orders_sync", "count": 3}
    body = {**selection, "backfill_id": "mc1", "batch_size": 2, "after": None}
    first = post(admin_client, BATCH, body).json()
    assert (first["sent"], first["done"]) == (2, False)
    second = post(admin_client, BATCH, {**body, "after": first["last_pk"]}).json()
    assert (second["sent"], second["done"]) == (1, True)
    again = post(admin_client, BATCH, {**body, "batch_size": 10}).json()
    assert (again["sent"], again["skipped"]) == (0, 3)
    assert EventLog.objects.filter(type="MANUAL").count() == 3

    refused = post(admin_client, COUNT, {"trigger": "orders_sync", "filters": "nope=1"})
    assert refused.status_code == 400
    assert "nope" in refused.json()["error"]


class OrderAdmin(SendToDBTriggerMixin, admin.ModelAdmin):
    """A project's admin that opts in to the backfill action."""


def test_the_backfill_action_is_opt_in_per_admin_of_the_project_site(rf, admin_user):
    # Nothing is added to the project's admin site for every model.
    assert "eventing_send_to_db_trigger" not in dict(admin.site.actions)
    request = rf.get("/")
    request.user = admin_user
    assert "eventing_send_to_db_trigger" not in admin.ModelAdmin(Order, admin.site).get_actions(
        request
    )
    assert "eventing_send_to_db_trigger" in OrderAdmin(Order, admin.site).get_actions(request)
    # Only users who may use the dialog are offered it.
    clerk = User.objects.create_user("clerk", password="pw")
    clerk.user_permissions.add(Permission.objects.get(codename="change_order"))
    request.user = User.objects.get(pk=clerk.pk)
    assert "eventing_send_to_db_trigger" not in OrderAdmin(Order, admin.site).get_actions(request)


def test_admin_action_opens_the_dialog_for_the_selected_rows(rf, admin_user):
    orders = [Order.objects.create(status="new") for _ in range(2)]
    queryset = Order.objects.filter(pk__in=[o.pk for o in orders]).order_by("pk")
    modeladmin = OrderAdmin(Order, admin.site)
    request = rf.post("/")
    request.user = admin_user
    request._messages = type("M", (), {"add": lambda *a, **k: None})()

    assert send_to_db_trigger(modeladmin, request, queryset) is None  # no DB trigger yet
    TriggerFactory(type="DB_UPDATE", source="testapp.Order")
    response = send_to_db_trigger(modeladmin, request, queryset)
    assert response.url == dialog_link(queryset)
    assert f"pk__in%3D{orders[0].pk}%2C{orders[1].pk}" in response.url
    assert Trigger.objects.count() == 1
