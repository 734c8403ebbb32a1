"""eventing.testing, as a host project's tests use it: under pytest-django (the fixtures of
eventing.testing.pytest, enabled in tests/conftest.py) and under Django's TestCase."""

from __future__ import annotations

import contextlib
import dataclasses

import jwt
import pytest
from django.db import transaction
from django.test import TestCase, override_settings
from standardwebhooks import Webhook, WebhookVerificationError

import eventing
from eventing.conf import settings
from eventing.models import EventLog, EventStatus, InvocationLog
from eventing.recording.emit import recorded
from eventing.store.trigger_cache import current_index
from eventing.testing import Reply, capture_emits, fake_receiver, signed_request
from eventing.verify import WebhookVerificationError as Refused
from eventing.verify import verify_sc_token, verify_signature, verify_webhook
from tests.factories import CustomerFactory, EventTypeFactory, TriggerFactory
from tests.testapp.models import Order
from triggers.models import Trigger

pytestmark = pytest.mark.django_db


# Recording what a code path emits


def test_an_emit_no_trigger_matches_is_recorded_without_a_trigger(emitted_events):
    assert eventing.emit("order_paid", {"order": 7, "total": "9.90"}) == []
    [event] = emitted_events.assert_emitted("order_paid", payload_contains={"order": 7})
    assert (event.trigger, event.event_id, event.payload) == (
        None,
        None,
        {"order": 7, "total": "9.90"},
    )


def test_each_recorded_row_is_one_event_with_its_trigger(emitted_events):
    first, second = TriggerFactory(type="order_paid"), TriggerFactory(type="order_paid")
    rows = eventing.emit("order_paid", {"order": 7})
    found = emitted_events.assert_emitted("order_paid", count=2)
    assert {e.trigger for e in found} == {first.name, second.name}
    assert {e.event_id for e in found} == {row.id for row in rows}
    emitted_events.assert_emitted("order_paid", trigger=first.name, payload={"order": 7})


def test_db_events_of_a_save_are_recorded_with_their_payload(emitted_events):
    trigger = TriggerFactory(type="DB_INSERT", source="testapp.Order")
    order = Order.objects.create(status="paid", total="3.50")
    emitted_events.assert_emitted(
        "DB_INSERT",
        trigger=trigger.name,
        source="testapp.Order",
        payload_contains={"pk": order.pk, "new": {"status": "paid", "total": "3.50"}},
    )
    emitted_events.assert_not_emitted("DB_UPDATE")


def test_nothing_is_published_while_recording(emitted_events, django_capture_on_commit_callbacks):
    """No broker: eventing registers no on-commit publish while the recorder holds the rows."""
    TriggerFactory(type="order_paid")
    with django_capture_on_commit_callbacks() as callbacks:
        [row] = eventing.emit("order_paid", {"order": 1})
    # Only the recorder's own marker (see the rollback test); no publish on commit.
    assert [callback.__qualname__ for callback in callbacks] == ["Survival.commit"]
    row.refresh_from_db()
    assert row.status == EventStatus.STAGED


def test_a_failed_assertion_lists_what_was_emitted(emitted_events):
    eventing.emit("order_paid", {"order": 7})
    eventing.emit("order_shipped", {"order": 7})
    with pytest.raises(AssertionError) as failure:
        emitted_events.assert_emitted("order_paid", payload_contains={"order": 8})
    message = str(failure.value)
    assert 'no order_paid event(s) with payload_contains={"order": 8} emitted' in message
    assert "Emitted (2):" in message
    assert 'order_paid (no trigger matched) payload={"order": 7}' in message
    assert "order_shipped" in message


def test_assert_not_emitted_fails_naming_the_event(emitted_events):
    eventing.emit("order_refunded", {"order": 3, "lines": [{"sku": "A"}]})
    emitted_events.assert_not_emitted("order_refunded", payload_contains={"order": 4})
    with pytest.raises(AssertionError, match=r"1 order_refunded event\(s\) emitted, none"):
        emitted_events.assert_not_emitted("order_refunded")
    with pytest.raises(AssertionError, match="1 instead of 2"):
        emitted_events.assert_emitted("order_refunded", count=2)


@dataclasses.dataclass(frozen=True)
class OwnerKeyLike:
    """How emit() keeps an owner instance: its model label and primary key as text."""

    model: str
    pk: str


def test_the_owner_is_recorded_when_an_emission_names_one(emitted_events):
    """`owner` rides on the `recorded` signal when emit() is given one; a test names the owner
    by its instance whether the signal carries the instance or its key."""
    acme, globex = CustomerFactory(), CustomerFactory()
    recorded.send(None, type="invoice_sent", payload={"n": 1}, source="", rows=[], owner=acme)
    key = OwnerKeyLike("testapp.Customer", str(globex.pk))
    recorded.send(None, type="invoice_paid", payload={"n": 2}, source="", rows=[], owner=key)
    emitted_events.assert_emitted("invoice_sent", owner=acme)
    emitted_events.assert_emitted("invoice_paid", owner=globex)
    emitted_events.assert_not_emitted("invoice_paid", owner=acme)
    with pytest.raises(AssertionError, match="owner="):
        emitted_events.assert_emitted("invoice_sent", owner=globex)


def test_emit_with_an_owner_is_recorded_with_that_owner(emitted_events, django_user_model):
    alice = django_user_model.objects.create(username="alice")
    bob = django_user_model.objects.create(username="bob")
    eventing.emit("invoice_sent", {"invoice": 1}, owner=alice)
    emitted_events.assert_emitted("invoice_sent", owner=alice, payload={"invoice": 1})
    emitted_events.assert_not_emitted("invoice_sent", owner=bob)


def test_an_emission_its_transaction_rolled_back_is_left_out(emitted_events):
    TriggerFactory(type="order_paid")

    def emit_both():
        with transaction_that_fails():
            eventing.emit("order_paid", {"order": 1})  # a row, rolled back
            eventing.emit("order_refunded", {"order": 1})  # no row, rolled back all the same

    with pytest.raises(RuntimeError):
        emit_both()
    eventing.emit("order_paid", {"order": 2})
    assert [(e.type, e.payload) for e in emitted_events] == [("order_paid", {"order": 2})]
    emitted_events.assert_not_emitted("order_refunded")


def test_recording_stops_with_the_block():
    with capture_emits() as events:
        eventing.emit("order_paid", {"order": 1})
    eventing.emit("order_paid", {"order": 2})
    assert [e.payload for e in events] == [{"order": 1}]
    assert recorded.receivers == []


def test_a_block_matches_the_triggers_in_the_database_not_a_stale_cache():
    with transaction.atomic():
        TriggerFactory(type="order_paid")
        assert current_index().find("order_paid", "")  # cached, then rolled back
        transaction.set_rollback(True)
    with capture_emits() as events:
        assert eventing.emit("order_paid", {"order": 1}) == []
    events.assert_emitted("order_paid", trigger=None)


# The fake receiver: the real pipeline, the HTTP exchange replaced


def test_the_receiver_gets_the_signed_webhook(webhook_receiver, django_capture_on_commit_callbacks):
    trigger = TriggerFactory(type="order_paid", url="https://crm.example.com/hooks/orders")
    with django_capture_on_commit_callbacks(execute=True):
        [row] = eventing.emit("order_paid", {"order": 7})
    [request] = webhook_receiver.requests
    assert (request.method, request.url) == ("POST", "https://crm.example.com/hooks/orders")
    assert request.json()["id"] == str(row.id)
    assert request.data == {"order": 7}
    assert request.verify(trigger.signing_secret)["role"] == "SpaceCloud"
    Webhook(trigger.signing_secret).verify(request.body, request.headers)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == (EventStatus.PROCESSED, 1, 200)
    invocation = InvocationLog.objects.get(event=row)
    assert invocation.request["headers"]["webhook-signature"] == "[redacted]"


def test_rows_wait_for_the_commit_or_an_explicit_flush(webhook_receiver):
    TriggerFactory(type="order_paid")
    [row] = eventing.emit("order_paid", {"order": 7})
    assert webhook_receiver.requests == []  # the test's transaction has not committed
    [result] = webhook_receiver.flush()
    assert result.outcome.succeeded
    assert len(webhook_receiver.requests) == 1
    assert webhook_receiver.flush() == []  # delivered once
    row.refresh_from_db()
    assert row.status == EventStatus.PROCESSED


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_an_emit_is_delivered_before_it_returns(webhook_receiver):
    """As a request or a command runs: no test transaction, the emit commits at once."""
    trigger = TriggerFactory(type="order_paid")
    order = Order.objects.create(status="new")
    [row] = eventing.emit("order_paid", {"order": order.pk})
    [request] = webhook_receiver.requests
    request.verify(trigger.signing_secret)
    assert EventLog.objects.get(id=row.id).status == EventStatus.PROCESSED


def test_the_outcome_rules_judge_the_answer(webhook_receiver):
    TriggerFactory(type="order_paid", retries=1)
    webhook_receiver.reply(200, {"error": "order unknown"})  # Space Cloud's failed-attempt rule
    [row] = eventing.emit("order_paid", {"order": 7})
    webhook_receiver.flush()
    row.refresh_from_db()
    assert (row.status, row.attempts) == (EventStatus.STAGED, 1)
    assert "order unknown" in row.remark
    webhook_receiver.reply(503)
    webhook_receiver.flush()  # the last attempt: failed, and its dead letter emitted
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == (EventStatus.FAILED, 2, 503)


def test_a_410_pauses_the_trigger_and_a_connection_error_is_a_failed_attempt(
    webhook_receiver,
):
    gone = TriggerFactory(type="order_paid")
    webhook_receiver.reply(410)
    eventing.emit("order_paid", {"order": 7})
    webhook_receiver.flush()
    assert Trigger.objects.get(pk=gone.pk).paused

    TriggerFactory(type="order_shipped")

    def refuse(request):
        raise ConnectionRefusedError("nobody listens")

    webhook_receiver.respond = refuse
    [row] = eventing.emit("order_shipped", {"order": 7})
    webhook_receiver.flush()
    row.refresh_from_db()
    assert row.status == EventStatus.STAGED
    assert "nobody listens" in row.remark


def test_one_flush_delivers_an_ordering_key_in_order(webhook_receiver):
    TriggerFactory(type="order_paid", ordering_key="order")
    for n in (1, 2, 3):
        eventing.emit("order_paid", {"order": 7, "n": n})
    results = webhook_receiver.flush()
    assert [r.data["n"] for r in webhook_receiver.requests] == [1, 2, 3]
    assert all(result.outcome.succeeded for result in results)


def test_a_paused_trigger_holds_its_rows_through_a_flush(webhook_receiver):
    TriggerFactory(type="order_paid", paused=True)
    [row] = eventing.emit("order_paid", {"order": 7})
    [result] = webhook_receiver.flush()
    assert result.skipped == "trigger paused or disabled"
    assert webhook_receiver.requests == []
    row.refresh_from_db()
    assert row.status == EventStatus.STAGED


def test_a_follow_up_in_the_reply_is_delivered_in_the_same_flush():
    TriggerFactory(type="order_paid")
    follow = TriggerFactory(type="invoice_due")
    EventTypeFactory(name="invoice_due")  # a follow-up's type must allow anonymous queueing

    def answer(request):
        if request.json()["type"] == "order_paid":
            return Reply(200, {"event": {"type": "invoice_due", "payload": {"order": 7}}})
        return Reply(204)

    with fake_receiver(respond=answer) as receiver:
        eventing.emit("order_paid", {"order": 7})
        receiver.flush()
    assert [r.json()["type"] for r in receiver.requests] == ["order_paid", "invoice_due"]
    assert receiver.requests[1].headers["X-Eventing-Trigger"] == follow.name


# Signed requests for receivers' tests


def test_a_signed_request_verifies_with_eventing_pyjwt_and_standardwebhooks():
    signed = signed_request({"order_id": 7}, type="order_placed")
    claims = verify_webhook(signed.body, signed.headers, signing_secret=signed.signing_secret)
    assert claims["role"] == "SpaceCloud"
    token = signed.headers["X-SC-Token"].removeprefix("Bearer ")
    assert jwt.decode(token, settings.SECRETS[0], algorithms=["HS256"])["id"] == claims["id"]
    Webhook(signed.signing_secret).verify(signed.body, signed.headers)
    assert signed.json()["data"] == {"order_id": 7}
    assert signed.json()["id"] == signed.event_id == signed.headers["webhook-id"]


@pytest.mark.parametrize("tamper", ["body", "signature", "expired"])
def test_a_tampered_request_fails_both_verifiers(tamper):
    signed = signed_request({"order_id": 7}, tamper=tamper)
    with pytest.raises(Refused):
        verify_webhook(signed.body, signed.headers, signing_secret=signed.signing_secret)
    with pytest.raises(WebhookVerificationError):
        Webhook(signed.signing_secret).verify(signed.body, signed.headers)


def test_a_token_signed_with_a_wrong_secret_fails_the_token_check_only():
    signed = signed_request({"order_id": 7}, tamper="token")
    with pytest.raises(Refused, match="Invalid X-SC-Token"):
        verify_sc_token(signed.headers["X-SC-Token"])
    verify_signature(signed.body, signed.headers, signed.signing_secret)  # the body is intact


def test_an_expired_token_is_refused_as_expired():
    signed = signed_request({}, tamper="expired")
    with pytest.raises(Refused, match="expired"):
        verify_sc_token(signed.headers["X-SC-Token"])
    with pytest.raises(Refused, match="too old"):
        verify_signature(signed.body, signed.headers, signed.signing_secret)


def test_an_unknown_tampering_is_refused_by_name():
    with pytest.raises(ValueError, match="tamper must be one of"):
        signed_request({}, tamper="header")


# The same under Django's TestCase


class FakeReceiverUnderTestCase(TestCase):
    """Inside TestCase's transaction: delivered by captureOnCommitCallbacks or flush()."""

    def setUp(self):
        self.trigger = TriggerFactory(type="order_paid")

    def test_delivered_on_the_captured_commit(self):
        with fake_receiver() as receiver, capture_emits() as emitted:
            with self.captureOnCommitCallbacks(execute=True):
                eventing.emit("order_paid", {"order": 9})
            assert len(receiver.requests) == 1
        emitted.assert_emitted("order_paid", trigger=self.trigger.name)
        receiver.requests[0].verify(self.trigger.signing_secret)
        assert EventLog.objects.get().status == EventStatus.PROCESSED

    def test_a_model_update_reaches_the_receiver_as_db_update(self):
        updates = TriggerFactory(type="DB_UPDATE", source="testapp.Order", watch_fields=["status"])
        order = Order.objects.create(status="new", total="8.00")
        with fake_receiver() as receiver, self.captureOnCommitCallbacks(execute=True):
            order.status = "paid"
            order.save()
        [request] = receiver.requests
        assert request.headers["X-Eventing-Trigger"] == updates.name
        data = request.data
        assert (data["model"], data["pk"]) == ("testapp.Order", order.pk)
        assert data["changed"] == ["status"]
        assert (data["old"]["status"], data["new"]["status"]) == ("new", "paid")

    def test_a_rolled_back_block_sends_nothing(self):
        with fake_receiver() as receiver:
            with (
                self.captureOnCommitCallbacks(execute=True),
                pytest.raises(RuntimeError),
                transaction_that_fails(),
            ):
                eventing.emit("order_paid", {"order": 9})
            assert receiver.requests == []
            assert receiver.flush() == []

    @override_settings(ROOT_URLCONF="tests.support.api_receiving_urls")
    def test_a_receiver_view_takes_a_signed_request_and_refuses_a_tampered_one(self):
        payload = {"order_id": 5}
        headers = {"X-Eventing-Trigger": self.trigger.name}
        ok = signed_request(payload, signing_secret=self.trigger.signing_secret)
        ok.headers.update(headers)
        response = ok.post(self.client, "/hooks/order-placed/")
        assert response.status_code == 200, response.content
        assert response.json()["order_id"] == 5
        for tamper in ("body", "signature", "token", "expired"):
            bad = signed_request(payload, signing_secret=self.trigger.signing_secret, tamper=tamper)
            bad.headers.update(headers)
            assert bad.post(self.client, "/hooks/order-placed/").status_code in (401, 403), tamper


@contextlib.contextmanager
def transaction_that_fails():
    """An atomic block the test makes fail (its rows roll back)."""
    with transaction.atomic():
        yield
        raise RuntimeError("rolled back")
