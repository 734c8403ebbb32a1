"""The events resource: queue one or a batch, list, retrieve, reschedule, cancel, redeliver."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from eventing.models import EventLog, EventStatus, InvocationLog
from tests.factories import EventTypeFactory, TriggerFactory
from tests.support.api_fixtures import EVENTS_URL, grant
from triggers.models import EventType

pytestmark = pytest.mark.django_db


@pytest.fixture
def trigger(open_type):
    return TriggerFactory(name="orders_hook", type="order_placed")


def test_queue_one_event_records_a_row_per_trigger(
    anon, trigger, django_capture_on_commit_callbacks
):
    TriggerFactory(name="orders_audit", type="order_placed")
    with django_capture_on_commit_callbacks() as callbacks:
        response = anon.post(
            EVENTS_URL, {"type": "order_placed", "payload": {"id": 7}}, format="json"
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] is True
    assert sorted(e["trigger"] for e in body["events"]) == ["orders_audit", "orders_hook"]
    assert {e["payload"]["id"] for e in body["events"]} == {7}
    assert EventLog.objects.filter(type="order_placed", status=EventStatus.STAGED).count() == 2
    assert len(callbacks) == 1  # one publish on commit for the whole request


def test_no_matching_trigger_records_nothing(anon, open_type):
    response = anon.post(EVENTS_URL, {"type": "order_placed", "payload": {}}, format="json")
    assert response.status_code == 200
    assert response.json() == {"created": False, "events": []}
    assert not EventLog.objects.exists()


def test_batch_of_1000_is_recorded_in_order(anon, trigger):
    # Its statements (bulk inserts, one transaction) are counted in bench/bench_statements.py.
    batch = [{"type": "order_placed", "payload": {"n": n}} for n in range(1000)]
    response = anon.post(EVENTS_URL, batch, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["count"] == 1000
    assert [r["events"][0]["payload"]["n"] for r in body["results"]] == list(range(1000))
    assert EventLog.objects.count() == 1000
    assert len({r["events"][0]["batch_id"] for r in body["results"]}) == 1000


def test_batch_over_the_limit_or_empty_is_refused(anon, trigger):
    too_many = [{"type": "order_placed"}] * 1001
    response = anon.post(EVENTS_URL, too_many, format="json")
    assert response.status_code == 400
    assert "at most 1000" in response.json()["detail"]
    assert anon.post(EVENTS_URL, [], format="json").status_code == 400
    assert not EventLog.objects.exists()


def test_batch_with_one_bad_event_records_nothing(anon, trigger):
    batch = [{"type": "order_placed"}, {"type": "bad-name"}, {"type": "order_placed"}]
    response = anon.post(EVENTS_URL, batch, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert body["detail"].startswith("[1].type:")
    assert not EventLog.objects.exists()


def test_batch_rule_failure_names_the_position(anon, trigger):
    EventTypeFactory(name="internal", queue_rule=EventType.QueueRule.DENY)
    batch = [{"type": "order_placed"}, {"type": "internal"}]
    response = anon.post(EVENTS_URL, batch, format="json")
    assert response.status_code == 403
    assert response.json()["detail"].startswith("[1]: Type 'internal' may not be queued")
    assert not EventLog.objects.exists()


def test_db_and_file_types_are_refused(anon, trigger):
    for kind in ("DB_INSERT", "FILE_CREATE", "db_update"):
        response = anon.post(EVENTS_URL, {"type": kind, "payload": {}}, format="json")
        assert response.status_code == 400, kind
        assert response.json()["detail"].startswith("type:")


def test_payload_checked_against_json_schema_names_the_path(anon, trigger):
    EventType.objects.filter(name="order_placed").update(
        schema={
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"qty": {"type": "integer"}}},
                }
            },
        }
    )
    bad = {"type": "order_placed", "payload": {"items": [{"qty": 1}, {"qty": "two"}]}}
    response = anon.post(EVENTS_URL, bad, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "payload.items[1].qty: 'two' is not of type 'integer'"
    assert "payload.items[1].qty" in body["fields"]
    missing = anon.post(EVENTS_URL, {"type": "order_placed", "payload": {}}, format="json")
    assert "'items' is a required property" in missing.json()["detail"]
    ok = {"type": "order_placed", "payload": {"items": [{"qty": 2}]}}
    assert anon.post(EVENTS_URL, ok, format="json").status_code == 201


def test_delay_and_deliver_at(anon, trigger):
    now = timezone.now()
    later = anon.post(EVENTS_URL, {"type": "order_placed", "delay_s": 60}, format="json")
    due = dt.datetime.fromisoformat(later.json()["events"][0]["deliver_at"])
    assert dt.timedelta(seconds=59) < due - now < dt.timedelta(seconds=70)
    at = (now + dt.timedelta(hours=2)).isoformat()
    scheduled = anon.post(EVENTS_URL, {"type": "order_placed", "deliver_at": at}, format="json")
    assert scheduled.status_code == 201
    both = anon.post(
        EVENTS_URL, {"type": "order_placed", "deliver_at": at, "delay_s": 5}, format="json"
    )
    assert both.status_code == 400
    assert "not both" in both.json()["detail"]
    far = anon.post(EVENTS_URL, {"type": "order_placed", "delay_s": 10**12}, format="json")
    assert far.status_code == 400
    assert "MAX_SCHEDULE_AHEAD_S" in far.json()["detail"]
    far_at = anon.post(
        EVENTS_URL, {"type": "order_placed", "deliver_at": "2999-01-01T00:00:00Z"}, format="json"
    )
    assert far_at.status_code == 400
    assert far_at.json()["detail"].startswith("deliver_at:")
    assert EventLog.objects.count() == 2


def test_idempotency_key_repeat_returns_original_with_200(anon, trigger):
    body = {"type": "order_placed", "payload": {"id": 1}, "idempotency_key": "order-1"}
    first = anon.post(EVENTS_URL, body, format="json")
    again = anon.post(EVENTS_URL, body, format="json")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["events"][0]["id"] == first.json()["events"][0]["id"]
    assert EventLog.objects.count() == 1
    conflict = anon.post(EVENTS_URL, {**body, "payload": {"id": 2}}, format="json")
    assert conflict.status_code == 409
    assert "idempotency_key" in conflict.json()["detail"]
    assert EventLog.objects.count() == 1


def test_idempotency_key_header_and_in_batch(anon, trigger):
    first = anon.post(
        EVENTS_URL, {"type": "order_placed"}, format="json", HTTP_IDEMPOTENCY_KEY="hdr-1"
    )
    again = anon.post(
        EVENTS_URL, {"type": "order_placed"}, format="json", HTTP_IDEMPOTENCY_KEY="hdr-1"
    )
    assert (first.status_code, again.status_code) == (201, 200)
    batch = [
        {"type": "order_placed", "idempotency_key": "b-1"},
        {"type": "order_placed", "idempotency_key": "b-1"},
        {"type": "order_placed", "idempotency_key": "hdr-1"},
    ]
    response = anon.post(EVENTS_URL, batch, format="json")
    assert response.status_code == 201
    results = response.json()["results"]
    assert [r["created"] for r in results] == [True, False, False]
    assert results[0]["events"][0]["id"] == results[1]["events"][0]["id"]
    assert results[2]["events"][0]["id"] == first.json()["events"][0]["id"]
    assert EventLog.objects.count() == 2
    repeat = anon.post(EVENTS_URL, batch[:1], format="json")
    assert repeat.status_code == 200


def queue(client, n=1, **extra):
    response = client.post(EVENTS_URL, [{"type": "order_placed", **extra}] * n, format="json")
    assert response.status_code == 201
    return [r["events"][0]["id"] for r in response.json()["results"]]


def test_reading_needs_staff_or_view_permission(anon, plain, plain_user, staff, trigger):
    queue(anon)
    assert anon.get(EVENTS_URL).status_code == 401
    assert anon.get(EVENTS_URL).headers["WWW-Authenticate"].startswith("Bearer")
    assert plain.get(EVENTS_URL).status_code == 403
    assert staff.get(EVENTS_URL).status_code == 200
    grant(plain_user, "eventing.view_eventlog")
    assert plain.get(EVENTS_URL).status_code == 200


def test_list_filters_and_cursor_pagination(staff, anon, trigger):
    TriggerFactory(name="other_hook", type="user_signed_up")
    EventTypeFactory(name="user_signed_up")
    ids = queue(anon, 5)
    anon.post(EVENTS_URL, {"type": "user_signed_up"}, format="json")
    EventLog.objects.filter(id=ids[0]).update(status=EventStatus.FAILED)

    by_type = staff.get(EVENTS_URL, {"type": "user_signed_up"}).json()["results"]
    assert [e["trigger"] for e in by_type] == ["other_hook"]
    assert staff.get(EVENTS_URL, {"trigger": "orders_hook"}).json()["results"].__len__() == 5
    failed = staff.get(EVENTS_URL, {"status": "failed"}).json()["results"]
    assert [e["id"] for e in failed] == [ids[0]]
    future = (timezone.now() + dt.timedelta(minutes=1)).isoformat()
    assert staff.get(EVENTS_URL, {"created_after": future}).json()["results"] == []
    assert len(staff.get(EVENTS_URL, {"created_before": future}).json()["results"]) == 6
    assert staff.get(EVENTS_URL, {"type": "a\x00b"}).status_code == 400
    bad = staff.get(EVENTS_URL, {"status": "lost", "created_after": "yesterday"})
    assert bad.status_code == 400
    assert "status" in bad.json()["fields"]
    assert "created_after" in bad.json()["fields"]

    seen, url = [], EVENTS_URL + "?page_size=2"
    while url:
        page = staff.get(url).json()
        assert len(page["results"]) <= 2
        seen += [e["id"] for e in page["results"]]
        url = page["next"]
    assert len(seen) == 6
    assert len(set(seen)) == 6


def test_retrieve_with_invocations(staff, anon, trigger):
    event_id = queue(anon)[0]
    InvocationLog.objects.create(
        event_id=event_id,
        attempt=1,
        invoked_at=timezone.now(),
        duration_ms=12,
        request={"url": "http://x"},
        response_status_code=500,
        response_body="boom",
        error_msg="HTTP 500",
    )
    body = staff.get(f"{EVENTS_URL}{event_id}/").json()
    assert body["id"] == event_id
    assert body["invocations"][0]["response_status_code"] == 500
    assert body["invocations"][0]["error_msg"] == "HTTP 500"
    assert staff.get(f"{EVENTS_URL}{uuid.uuid4()}/").status_code == 404
    missing = staff.get(f"{EVENTS_URL}not-a-uuid/")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


def test_patch_deliver_at_while_staged(staff, plain, plain_user, anon, trigger):
    event_id = queue(anon)[0]
    at = timezone.now() + dt.timedelta(hours=1)
    url = f"{EVENTS_URL}{event_id}/"
    assert plain.patch(url, {"deliver_at": at.isoformat()}, format="json").status_code == 403
    response = staff.patch(url, {"deliver_at": at.isoformat()}, format="json")
    assert response.status_code == 200
    assert abs(EventLog.objects.get(id=event_id).deliver_at - at) < dt.timedelta(seconds=1)
    assert staff.patch(url, {"deliver_at": "soon"}, format="json").status_code == 400
    assert (
        staff.patch(url, {"deliver_at": "2999-01-01T00:00:00Z"}, format="json").status_code == 400
    )
    EventLog.objects.filter(id=event_id).update(status=EventStatus.PROCESSED)
    done = staff.patch(url, {"deliver_at": at.isoformat()}, format="json")
    assert done.status_code == 409
    assert "only staged" in done.json()["detail"]
    grant(plain_user, "eventing.change_eventlog")
    EventLog.objects.filter(id=event_id).update(status=EventStatus.STAGED)
    assert plain.patch(url, {"deliver_at": at.isoformat()}, format="json").status_code == 200


def test_cancel_and_redeliver(staff, plain, plain_user, anon, trigger):
    event_id = queue(anon)[0]
    cancel, redeliver = f"{EVENTS_URL}{event_id}/cancel/", f"{EVENTS_URL}{event_id}/redeliver/"
    assert plain.post(cancel).status_code == 403
    assert staff.post(redeliver).status_code == 409  # still staged
    response = staff.post(cancel)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert staff.post(cancel).status_code == 409
    grant(plain_user, "eventing.redeliver_eventlog")
    response = plain.post(redeliver)
    assert response.status_code == 200
    assert response.json()["status"] == "staged"
    assert response.json()["attempts"] == 0
    assert EventLog.objects.get(id=event_id).status == EventStatus.STAGED


def test_a_batch_failing_at_insert_records_nothing(anon, trigger, monkeypatch):
    """A key taken by a concurrent request surfaces at INSERT: the whole batch rolls back."""
    anon.post(EVENTS_URL, {"type": "order_placed", "idempotency_key": "taken"}, format="json")
    assert EventLog.objects.count() == 1
    # Pretend the concurrent request committed after our lookup.
    monkeypatch.setattr("eventing.recording.emit.find_idempotent_many", lambda keys, db: {})
    batch = [{"type": "order_placed", "payload": {"n": n}} for n in range(600)]
    batch.append({"type": "order_placed", "idempotency_key": "taken"})
    response = anon.post(EVENTS_URL, batch, format="json")
    assert response.status_code == 409
    assert "retry" in response.json()["detail"]
    assert EventLog.objects.count() == 1
