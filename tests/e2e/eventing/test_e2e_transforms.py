"""End to end: a trigger's request transform shapes what a real receiver gets from a real
worker, and a failing template fails the attempt, with its message, for good."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs

import pytest
from standardwebhooks import Webhook

from eventing import emit
from eventing.models import EventLog, EventStatus, InvocationLog
from tests.factories import TriggerFactory
from tests.testapp.models import Order
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_transformed_request_arrives_as_the_templates_say(worker, receiver):
    trigger = TriggerFactory(
        name="orders_put",
        type="DB_INSERT",
        source="testapp.Order",
        url=receiver.url("/ok"),
        transform_method="PUT",
        transform_url="{{ base_url }}/orders/{{ data.new.id }}",
        transform_query={"status": "{{ data.new.status }}", "via": "{{ trigger }}"},
        transform_headers={"X-Order-Status": "{{ data.new.status | upper }}", "X-Empty": ""},
        transform_body=(
            '{"order": {{ data.new.id }}, "status": {{ data.new.status | tojson }}, '
            '"kind": {{ type | tojson }}, "event": {{ id | tojson }}}'
        ),
    )
    order = Order.objects.create(status="paid & done", total="3.00")

    got = wait_until(
        lambda: next((r for r in receiver.requests if r.path.startswith("/ok/orders/")), None),
        message="the transformed request",
    )
    event = EventLog.objects.get(trigger=trigger)
    path, _, query = got.path.partition("?")
    assert path == f"/ok/orders/{order.pk}"
    # Parameters in any order: PostgreSQL's jsonb keeps an object's keys in its own order.
    assert parse_qs(query) == {"status": ["paid & done"], "via": ["orders_put"]}
    assert got.method == "PUT"
    assert got.headers["X-Order-Status"] == "PAID & DONE"
    assert "X-Empty" not in got.headers
    assert got.headers["Content-Type"] == "application/json"
    assert json.loads(got.body) == {
        "order": order.pk,
        "status": "paid & done",
        "kind": "DB_INSERT",
        "event": str(event.id),
    }
    # The signature covers the transformed body, exactly as sent.
    assert Webhook(trigger.signing_secret).verify(got.body, got.headers) == json.loads(got.body)
    assert got.headers["webhook-id"] == str(event.id)
    wait_until(
        lambda: EventLog.objects.get(id=event.id).status == EventStatus.PROCESSED,
        message="the event processed",
    )
    invocation = InvocationLog.objects.get(event=event)
    assert invocation.request["method"] == "PUT"
    assert invocation.request["url"] == receiver.url(got.path)
    assert json.loads(invocation.request["body"])["order"] == order.pk


def test_a_failing_template_fails_the_attempt_with_its_message(worker, receiver):
    trigger = TriggerFactory(
        type="DB_INSERT",
        source="testapp.Order",
        url=receiver.url("/ok/never"),
        retries=3,
        # Valid syntax; the event has no `coupon` field, and the output would not be JSON.
        transform_body='{"coupon": {{ data.new.coupon }}}',
    )
    Order.objects.create(status="new", total="1.00")

    event = wait_until(
        lambda: EventLog.objects.filter(trigger=trigger, status=EventStatus.FAILED).first(),
        message="the event failed",
    )
    # One attempt, no retries: the same template over the same event would fail again.
    assert event.attempts == 1
    assert "Request transform failed: body template:" in event.remark
    assert "coupon" in event.remark
    [invocation] = InvocationLog.objects.filter(event=event)
    assert invocation.error_msg == event.remark
    assert invocation.succeeded is False
    assert receiver.on("/ok/never") == []


def test_body_that_is_not_json_fails_unless_the_content_type_says_otherwise(worker, receiver):
    json_trigger = TriggerFactory(
        type="order_placed",
        url=receiver.url("/ok/json"),
        transform_body="order {{ data.order }}",
    )
    text_trigger = TriggerFactory(
        type="order_placed",
        url=receiver.url("/ok/text"),
        transform_headers={"Content-Type": "text/plain; charset=utf-8"},
        transform_body="order {{ data.order }}",
    )
    emit("order_placed", {"order": 42})

    [got] = receiver.wait_for("/ok/text")
    assert got.body == b"order 42"
    assert got.headers["Content-Type"] == "text/plain; charset=utf-8"
    signed_at = dt.datetime.fromtimestamp(int(got.headers["webhook-timestamp"]), tz=dt.UTC)
    expected = Webhook(text_trigger.signing_secret).sign(
        got.headers["webhook-id"], signed_at, got.body.decode()
    )
    assert got.headers["webhook-signature"] == expected
    failed = wait_until(
        lambda: EventLog.objects.filter(trigger=json_trigger, status=EventStatus.FAILED).first(),
        message="the JSON trigger's event failed",
    )
    assert "not valid JSON" in failed.remark
    assert receiver.on("/ok/json") == []


def test_a_templated_url_still_meets_the_ssrf_guard(worker, receiver):
    trigger = TriggerFactory(
        type="order_placed",
        url=receiver.url("/ok"),
        transform_url="http://169.254.169.254/latest/meta-data/{{ data.order }}",
    )
    emit("order_placed", {"order": 1})

    event = wait_until(
        lambda: EventLog.objects.filter(trigger=trigger, status=EventStatus.FAILED).first(),
        message="the event refused",
    )
    assert event.attempts == 1
    assert "Blocked: 169.254.169.254" in event.remark
