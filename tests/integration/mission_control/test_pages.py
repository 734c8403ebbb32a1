"""Every Mission Control page renders for an admin, and the trigger form adapts to its type."""

from __future__ import annotations

import pytest
from django.urls import reverse

from eventing import emit
from eventing.models import EventLog
from tests.factories import EventTypeFactory, TriggerFactory
from triggers.models import Trigger

pytestmark = pytest.mark.django_db


def test_root_redirects_to_mission_control(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/mission-control/"


def test_index_shows_dashboard(admin_client):
    response = admin_client.get(reverse("mission_control:index"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Mission Control" in body
    assert 'id="mc-dashboard"' in body
    assert "<svg" in body
    assert "cdn" not in body.lower()


def test_trigger_pages(admin_client):
    trigger = TriggerFactory(url="https://{{HOOK_HOST}}/hook")
    changelist = admin_client.get(reverse("mission_control:triggers_trigger_changelist"))
    assert changelist.status_code == 200
    assert "https://{{HOOK_HOST}}/hook" in changelist.content.decode()
    change = admin_client.get(reverse("mission_control:triggers_trigger_change", args=[trigger.pk]))
    assert change.status_code == 200
    assert trigger.signing_secret in change.content.decode()
    add = admin_client.get(reverse("mission_control:triggers_trigger_add"))
    assert add.status_code == 200
    assert "testapp.Order" in add.content.decode()


def test_event_pages(admin_client):
    TriggerFactory(type="order_placed")
    [event] = emit("order_placed", {"n": 1})
    changelist = admin_client.get(reverse("mission_control:eventing_eventlog_changelist"))
    assert changelist.status_code == 200
    assert str(event.id)[:8] in changelist.content.decode()
    detail = admin_client.get(reverse("mission_control:eventing_eventlog_change", args=[event.pk]))
    assert detail.status_code == 200
    assert "&quot;n&quot;: 1" in detail.content.decode()
    assert EventLog.objects.count() == 1


def test_queue_page_renders(admin_client):
    EventTypeFactory(name="order_placed")
    response = admin_client.get(reverse("mission_control:queue_event"))
    assert response.status_code == 200
    assert "order_placed" in response.content.decode()


def test_create_db_trigger_through_form(admin_client):
    response = admin_client.post(
        reverse("mission_control:triggers_trigger_add"),
        {
            "name": "orders_paid",
            "description": "",
            "kind": "DB_UPDATE",
            "custom_type": "",
            "source_model": "testapp.Order",
            "source_storage": "",
            "watch_fields": ["testapp.Order:status"],
            "payload_fields": [],
            "path_pattern": "",
            "filter": "{}",
            "url": "http://127.0.0.1:9/hook",
            "headers": '[{"name": "X-Key", "value": "s3cret"}]',
            "timeout_ms": 5000,
            "retries": 3,
            "backoff_base_s": 5,
            "backoff_max_s": 3600,
            "retry_policy": "transient",
            "retry_statuses": "[]",
            "circuit_failures": 10,
            "delay_s": 0,
            "enabled": "on",
            "paused_reason": "",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    trigger = Trigger.objects.get(name="orders_paid")
    assert trigger.type == "DB_UPDATE"
    assert trigger.source == "testapp.Order"
    assert trigger.watch_fields == ["status"]
    assert trigger.headers == [{"name": "X-Key", "value": "s3cret"}]
