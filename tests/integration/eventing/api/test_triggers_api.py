"""Triggers and event types over the API: CRUD validated like the admin, and the test action."""

from __future__ import annotations

import pytest

from eventing.models import EventLog, EventStatus, InvocationLog
from tests.factories import TriggerFactory
from tests.support.api_fixtures import TRIGGERS_URL, TYPES_URL, grant
from triggers.models import EventType, Trigger

pytestmark = pytest.mark.django_db

HOOK = {
    "name": "orders_paid",
    "type": "DB_UPDATE",
    "source": "testapp.order",
    "url": "https://hooks.example.com/orders",
    "watch_fields": ["status"],
    "filter": {"new.status": "paid"},
}


def test_create_read_update_delete(staff):
    created = staff.post(TRIGGERS_URL, HOOK, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["source"] == "testapp.Order"  # normalised like the admin does
    assert body["signing_secret"].startswith("whsec_")
    assert body["retries"] == 3
    assert staff.get(f"{TRIGGERS_URL}orders_paid/").json()["url"] == HOOK["url"]
    assert [t["name"] for t in staff.get(TRIGGERS_URL).json()] == ["orders_paid"]
    assert body["send_authorization"] is False
    patched = staff.patch(
        f"{TRIGGERS_URL}orders_paid/",
        {"paused": True, "retries": 5, "send_authorization": True},
        format="json",
    )
    assert patched.status_code == 200
    assert patched.json()["send_authorization"] is True
    trigger = Trigger.objects.get(name="orders_paid")
    assert (trigger.paused, trigger.retries, trigger.send_authorization) == (True, 5, True)
    assert staff.delete(f"{TRIGGERS_URL}orders_paid/").status_code == 204
    assert not Trigger.objects.exists()
    assert staff.get(f"{TRIGGERS_URL}orders_paid/").status_code == 404
    assert staff.get(f"{TRIGGERS_URL}bad%00name/").status_code == 404  # PostgreSQL refuses NUL


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"url": "ftp://x"}, "url", "absolute http"),
        ({"source": "testapp.Nope"}, "source", "not an installed model"),
        ({"source": "eventing.EventLog"}, "source", "would loop"),
        ({"type": "DB_INSERT", "watch_fields": ["status"]}, "watch_fields", "DB_UPDATE"),
        ({"watch_fields": ["nope"]}, "watch_fields", "Unknown field"),
        ({"headers": [{"name": "X-SC-Token", "value": "x"}]}, "headers", "set by Eventing"),
        ({"name": "bad name"}, "name", "letters, digits"),
        ({"retries": -1}, "retries", ""),
        ({"backoff_base_s": 10, "backoff_max_s": 1}, "backoff_max_s", "at least"),
        ({"signing_secret": "plain"}, "signing_secret", "whsec_"),
        ({"type": "FILE_CREATE", "source": "nowhere"}, "source", "storage alias"),
        ({"type": "FILE_CREATE", "source": "default"}, "source", "not wrapped in EventingStorage"),
        ({"type": "db_thing"}, "type", "reserved"),
    ],
)
def test_validation_matches_the_admin(staff, change, field, message):
    response = staff.post(TRIGGERS_URL, {**HOOK, **change}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert field in body["fields"], body
    assert message in body["detail"]
    assert not Trigger.objects.exists()


def test_duplicate_name_and_partial_update_validation(staff):
    staff.post(TRIGGERS_URL, HOOK, format="json")
    again = staff.post(TRIGGERS_URL, HOOK, format="json")
    assert again.status_code == 400
    assert "name" in again.json()["fields"]
    bad = staff.patch(f"{TRIGGERS_URL}orders_paid/", {"url": "nope"}, format="json")
    assert bad.status_code == 400
    assert Trigger.objects.get().url == HOOK["url"]


def test_managing_needs_permissions(plain, plain_user, anon):
    assert anon.get(TRIGGERS_URL).status_code == 401
    assert plain.get(TRIGGERS_URL).status_code == 403
    assert plain.post(TRIGGERS_URL, HOOK, format="json").status_code == 403
    grant(plain_user, "triggers.view_trigger", "triggers.add_trigger")
    assert plain.get(TRIGGERS_URL).status_code == 200
    assert plain.post(TRIGGERS_URL, HOOK, format="json").status_code == 201
    assert plain.delete(f"{TRIGGERS_URL}orders_paid/").status_code == 403
    assert plain.post(f"{TRIGGERS_URL}orders_paid/test/").status_code == 403


def test_test_action_fires_at_a_real_receiver(staff, receiver):
    receiver.replies["/reply/test"] = {"seen": True}
    TriggerFactory(
        name="probe",
        type="order_placed",
        url=receiver.url("/reply/test"),
        filter={"never": "matches"},
    )
    response = staff.post(f"{TRIGGERS_URL}probe/test/", {"payload": {"ping": 1}}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["delivered"] is True
    assert body["status_code"] == 200
    assert body["outcome"] == "processed"
    assert body["response"] == {"seen": True}
    assert body["event"]["invocations"][0]["response_status_code"] == 200
    arrived = receiver.on("/reply/test")[0]
    assert arrived.json()["data"] == {"ping": 1}
    assert arrived.headers["X-Eventing-Trigger"] == "probe"
    assert EventLog.objects.get().source == "test"


def test_test_action_reports_a_failure(staff, receiver):
    TriggerFactory(name="probe", type="order_placed", url=receiver.url("/status/503"), retries=0)
    body = staff.post(f"{TRIGGERS_URL}probe/test/").json()
    assert body["delivered"] is False
    assert body["status_code"] == 503
    assert body["outcome"] == "failed"
    assert "HTTP 503" in body["remark"]
    assert receiver.on("/status/503")[0].json()["data"] == {"test": True}
    assert InvocationLog.objects.count() == 1
    assert EventLog.objects.get(type="order_placed").status == EventStatus.FAILED


def test_test_action_refuses_a_paused_trigger(staff):
    TriggerFactory(name="probe", paused=True)
    response = staff.post(f"{TRIGGERS_URL}probe/test/")
    assert response.status_code == 409
    assert "paused" in response.json()["detail"]
    assert not EventLog.objects.exists()


def test_event_types_crud_and_schema_validation(staff, plain):
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    created = staff.post(
        TYPES_URL,
        {"name": "order_placed", "schema": schema, "queue_rule": "authenticated"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert EventType.objects.get().queue_rule == "authenticated"
    bad_schema = staff.post(
        TYPES_URL, {"name": "other", "schema": {"type": "nonsense"}}, format="json"
    )
    assert bad_schema.status_code == 400
    assert "Invalid JSON Schema" in bad_schema.json()["detail"]
    reserved = staff.post(TYPES_URL, {"name": "DB_INSERT"}, format="json")
    assert reserved.status_code == 400
    assert "name" in reserved.json()["fields"]
    rule = staff.post(TYPES_URL, {"name": "x", "queue_rule": "everyone"}, format="json")
    assert rule.status_code == 400
    assert "queue_rule" in rule.json()["fields"]
    patched = staff.patch(f"{TYPES_URL}order_placed/", {"queue_rule": "deny"}, format="json")
    assert patched.json()["queue_rule"] == "deny"
    assert plain.get(TYPES_URL).status_code == 403
    assert staff.delete(f"{TYPES_URL}order_placed/").status_code == 204
    assert not EventType.objects.exists()


def test_delays_beyond_the_schedule_limit_are_refused(staff):
    for field in ("delay_s", "backoff_max_s"):
        response = staff.post(TRIGGERS_URL, {**HOOK, field: 1e300}, format="json")
        assert response.status_code == 400
        assert field in response.json()["fields"]
        assert f"{field}:" in response.json()["detail"]
        assert "less than or equal" in response.json()["detail"]


def test_a_schema_with_a_remote_ref_is_a_400_when_queueing(anon, staff):
    EventType.objects.create(
        name="remote", queue_rule="allow", schema={"$ref": "https://example.com/schemas/order.json"}
    )
    TriggerFactory(name="remote_hook", type="remote")
    response = anon.post("/api/eventing/events/", {"type": "remote", "payload": {}}, format="json")
    assert response.status_code == 400
    assert "cannot be applied" in response.json()["detail"]
    assert not EventLog.objects.exists()


def test_credentials_are_masked_after_creation(staff):
    hook = {**HOOK, "name": "masked", "headers": [{"name": "X-Key", "value": "s3cret-key-1"}]}
    created = staff.post(TRIGGERS_URL, hook, format="json").json()
    secret = created["signing_secret"]
    assert secret.startswith("whsec_")  # shown once, to whoever created it
    assert created["headers"] == [{"name": "X-Key", "value": "********"}]
    read = staff.get(f"{TRIGGERS_URL}masked/")
    assert secret not in read.content.decode()
    assert "s3cret-key-1" not in read.content.decode()
    assert "s3cret-key-1" not in staff.get(TRIGGERS_URL).content.decode()
    # What GET showed can be sent back unchanged without losing the stored values.
    body = read.json()
    patched = staff.patch(
        f"{TRIGGERS_URL}masked/",
        {"headers": body["headers"], "signing_secret": body["signing_secret"]},
        format="json",
    )
    assert patched.status_code == 200, patched.json()
    trigger = Trigger.objects.get(name="masked")
    assert trigger.headers == [{"name": "X-Key", "value": "s3cret-key-1"}]
    assert trigger.signing_secret == secret


def test_view_only_users_read_credentials_masked(plain, plain_user):
    trigger = TriggerFactory(
        name="viewed", headers=[{"name": "X-Tenant", "value": "tenant-api-hidden-17"}]
    )
    grant(plain_user, "triggers.view_trigger")
    for url in (TRIGGERS_URL, f"{TRIGGERS_URL}viewed/"):
        response = plain.get(url)
        assert response.status_code == 200
        text = response.content.decode()
        assert "tenant-api-hidden-17" not in text
        assert trigger.signing_secret.removeprefix("whsec_") not in text
    read = plain.get(f"{TRIGGERS_URL}viewed/").json()
    assert read["signing_secret"] == "********"
    assert read["headers"] == [{"name": "X-Tenant", "value": "********"}]
