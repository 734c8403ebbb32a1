"""The receiving side: eventing.verify helpers and the DRF WebhookAuthentication class."""

from __future__ import annotations

import json

import pytest
import requests
from django.utils import timezone
from rest_framework.test import APIRequestFactory

from eventing.models import EventLog
from eventing.transport import build_request
from eventing.verify import WebhookVerificationError, verify_webhook
from tests.eventing.api.receiving_urls import OrderPlacedHook
from tests.factories import EventTypeFactory, TriggerFactory

pytestmark = pytest.mark.django_db


def signed_request(trigger, payload):
    event = EventLog.objects.create(
        batch_id="00000000-0000-0000-0000-000000000001",
        type=trigger.type,
        trigger=trigger,
        trigger_name=trigger.name,
        payload=payload,
        deliver_at=timezone.now(),
    )
    return event, build_request(event, trigger, attempt=1)


def call_hook(body: bytes, headers: dict[str, str]):
    meta = {
        f"HTTP_{name.upper().replace('-', '_')}": value
        for name, value in headers.items()
        if name.lower() != "content-type"
    }
    request = APIRequestFactory().post(
        "/hooks/order-placed/", body, content_type="application/json", **meta
    )
    return OrderPlacedHook.as_view()(request)


def test_verify_webhook_accepts_our_request_and_rejects_tampering():
    trigger = TriggerFactory(name="orders_hook")
    event, request = signed_request(trigger, {"order_id": 1})
    claims = verify_webhook(request.body, request.headers, signing_secret=trigger.signing_secret)
    assert claims["role"] == "eventing"
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(request.body + b" ", request.headers, signing_secret=trigger.signing_secret)
    with pytest.raises(WebhookVerificationError, match="X-SC-Token"):
        verify_webhook(request.body, {**request.headers, "X-SC-Token": "Bearer x.y.z"})


def test_webhook_authentication_class():
    trigger = TriggerFactory(name="orders_hook")
    event, request = signed_request(trigger, {"order_id": 42})
    response = call_hook(request.body, request.headers)
    assert response.status_code == 200
    assert response.data == {"received": str(event.id), "order_id": 42, "sender": "eventing"}
    tampered = call_hook(request.body.replace(b"42", b"43"), request.headers)
    assert tampered.status_code == 401
    assert "webhook-signature does not match" in str(tampered.data["detail"])
    unsigned = {k: v for k, v in request.headers.items() if k != "X-SC-Token"}
    assert call_hook(request.body, unsigned).status_code == 401


@pytest.mark.e2e
@pytest.mark.urls("tests.eventing.api.receiving_urls")
@pytest.mark.django_db(transaction=True)
def test_synchronous_queue_to_the_example_receiver(live_server):
    """Full circle over real HTTP: queue synchronously, the example view verifies and replies."""
    EventTypeFactory(name="order_placed", queue_rule="allow")
    TriggerFactory(
        name="orders_hook", type="order_placed", url=f"{live_server.url}/hooks/order-placed/"
    )
    client = requests.Session()
    client.trust_env = False  # no proxy between us and 127.0.0.1
    response = client.post(
        f"{live_server.url}/v1/api/default/eventing/queue",
        data=json.dumps(
            {"type": "order_placed", "payload": {"order_id": 9}, "isSynchronous": True}
        ),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["order_id"] == 9
    assert result["sender"] == "eventing"
    assert result["received"] == response.json()["event_ids"][0]
