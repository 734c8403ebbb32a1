"""The webhook request: wire format, headers, signing and redaction (real receiver)."""

import base64
import datetime as dt
import json

import jwt
import pytest
from django.conf import settings
from standardwebhooks import Webhook

from eventing import emit
from eventing.delivery.deliver import deliver_event
from eventing.models import EventLog, EventStatus
from eventing.webhooks.request import REDACTED, build_request, send
from tests.factories import EventTypeFactory, TriggerFactory

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/in"


@pytest.fixture
def event(monkeypatch):
    monkeypatch.setenv("HOOK_TOKEN", "s3cr3t-from-env")
    trigger = TriggerFactory(
        type="order",
        url="https://{{HOOK_HOST}}/in",
        headers=[
            {"name": "Authorization", "value_from_env": "HOOK_TOKEN"},
            {"name": "X-Plain", "value": "visible"},
            {"name": "X-Api-Key", "value": "literal-key"},
        ],
    )
    monkeypatch.setenv("HOOK_HOST", "hooks.example.com")
    [row] = emit("order", {"n": 1, "text": "é"})
    row.refresh_from_db()
    return row, trigger


@pytest.fixture
def live(event, receiver, monkeypatch):
    """The event, its trigger now calling `path` on a real receiver; returns (row, trigger, use)."""
    row, trigger = event
    monkeypatch.setenv("HOOK_HOST", f"127.0.0.1:{receiver.port}")

    def use(path: str):
        trigger.url = "http://{{HOOK_HOST}}" + path
        trigger.save()
        return trigger

    return row, use


def test_request_body_and_headers(event):
    row, trigger = event
    request = build_request(row, trigger, attempt=2)
    body = json.loads(request.body)
    assert body == {
        "specversion": "1.0",
        "id": str(row.id),
        "type": "order",
        "source": "eventing",
        "time": row.deliver_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "datacontenttype": "application/json",
        "data": {"n": 1, "text": "é"},
    }
    assert request.url == URL
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-id"] == str(row.id)
    assert headers["X-Eventing-Attempt"] == "2"
    assert headers["X-Eventing-Trigger"] == trigger.name
    assert headers["Authorization"] == "s3cr3t-from-env"
    assert headers["X-Plain"] == "visible"
    token = headers["X-SC-Token"].removeprefix("Bearer ")
    claims = jwt.decode(token, settings.EVENTING["SECRETS"][0], algorithms=["HS256"])
    assert claims["role"] == "SpaceCloud"
    Webhook(trigger.signing_secret).verify(request.body, headers)


def test_cloudevents_time_is_the_due_time(event):
    row, trigger = event
    row.deliver_at = dt.datetime(
        2031, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))
    )
    body = json.loads(build_request(row, trigger, attempt=1).body)
    assert body["time"] == "2031-05-06T05:08:09.123456Z"


def test_send_authorization_sends_the_sc_token_as_authorization(live, receiver):
    row, use = live
    trigger = use("/ok")
    trigger.headers = [{"name": "X-Plain", "value": "visible"}]
    trigger.send_authorization = True
    trigger.save()
    assert deliver_event(row.id).outcome.status == EventStatus.PROCESSED
    [got] = receiver.on("/ok")
    assert got.headers["Authorization"] == got.headers["X-SC-Token"]
    token = got.headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, settings.EVENTING["SECRETS"][0], algorithms=["HS256"])
    assert claims["role"] == "SpaceCloud"
    assert row.invocations.get().request["headers"]["Authorization"] == REDACTED


def test_without_send_authorization_no_authorization_is_sent(live, receiver):
    row, use = live
    trigger = use("/ok")
    trigger.headers = []
    trigger.save()
    assert deliver_event(row.id).outcome.status == EventStatus.PROCESSED
    [got] = receiver.on("/ok")
    assert "Authorization" not in got.headers
    assert got.headers["X-SC-Token"].startswith("Bearer ")


def test_stored_request_redacts_secrets(event):
    row, trigger = event
    request = build_request(row, trigger, attempt=1)
    stored = json.dumps({"url": request.logged_url, "headers": request.redacted_headers})
    assert "s3cr3t-from-env" not in stored
    assert "literal-key" not in stored
    assert settings.EVENTING["SECRETS"][0] not in stored
    assert trigger.signing_secret not in stored
    assert request.redacted_headers["X-SC-Token"] == REDACTED
    assert request.redacted_headers["X-Plain"] == "visible"
    assert "{{HOOK_HOST}}" in request.logged_url


def test_delivery_records_the_invocation(live, receiver):
    row, use = live
    use("/ok")
    result = deliver_event(row.id)
    assert result.outcome.status == EventStatus.PROCESSED
    row.refresh_from_db()
    assert row.status == EventStatus.PROCESSED
    assert row.attempts == 1
    assert row.last_status_code == 200
    invocation = row.invocations.get()
    assert invocation.response_status_code == 200
    assert json.loads(invocation.response_body) == {"ok": True}
    assert "s3cr3t-from-env" not in json.dumps(invocation.request)


def test_missing_env_variable_is_a_failed_attempt_with_a_clear_remark(event, monkeypatch):
    row, trigger = event
    monkeypatch.delenv("HOOK_HOST")
    result = deliver_event(row.id)
    assert result.outcome.status == EventStatus.STAGED
    assert "HOOK_HOST is not set" in EventLog.objects.get(id=row.id).remark


def test_redirect_is_not_followed(live, receiver):
    row, use = live
    use("/redirect/302")
    deliver_event(row.id)
    row.refresh_from_db()
    assert row.status == EventStatus.STAGED
    assert "redirect (not followed)" in row.remark
    assert len(receiver.requests) == 1


def test_response_body_is_cut(live, settings):
    settings.EVENTING = {**settings.EVENTING, "MAX_RESPONSE_BYTES": 10}
    row, use = live
    trigger = use("/big/1000")
    request = build_request(row, trigger, 1)
    result = send(request, 5)
    assert result.body == "x" * 10
    assert result.truncated


def test_follow_up_events_from_the_reply(live, receiver):
    row, use = live
    use("/reply/in")
    TriggerFactory(name="follow", type="order_shipped")
    EventTypeFactory(name="order_shipped")  # follow-ups pass `allow` rules only
    receiver.replies["/reply/in"] = {
        "events": [
            {"type": "order_shipped", "payload": {"n": 1}},
            {"type": "DB_INSERT", "payload": {}},
        ]
    }
    deliver_event(row.id)
    follow = EventLog.objects.get(trigger_name="follow")
    assert follow.payload == {"n": 1}
    assert follow.source == f"follow-up:{row.id}:depth=1:root={row.id}"
    assert not EventLog.objects.filter(type="DB_INSERT").exists()


def test_signature_verifies_with_standardwebhooks_and_our_verifier():
    import time

    from eventing.verify import WebhookVerificationError, verify_signature
    from eventing.webhooks.signing import webhook_signature

    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    now = int(time.time())
    body = b'{"a":1}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": webhook_signature(secret, "msg_1", now, body),
    }
    assert Webhook(secret).verify(body, headers) == {"a": 1}
    verify_signature(body, headers, secret)
    with pytest.raises(WebhookVerificationError):
        verify_signature(b'{"a":2}', headers, secret)
