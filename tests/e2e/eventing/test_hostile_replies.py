"""Hostile replies on the delivery path: bad Retry-After, deep JSON, and follow-up events that
try to bypass queue rules and schemas, forge dead letters or loop."""

from __future__ import annotations

import json

import pytest

from eventing import emit
from eventing.delivery import deliver as delivery
from eventing.delivery.deliver import deliver_event, deliver_events
from eventing.delivery.follow_ups import depth_of
from eventing.models import EventLog, EventStatus, InvocationLog
from tests.factories import EventTypeFactory, TriggerFactory
from tests.hostile import answer_by, http_response, nested_reply, reply
from tests.support.api_fixtures import QUEUE_URL
from tests.waiting import wait_until
from triggers.models import EventType

pytestmark = pytest.mark.django_db

OK = http_response(200, b"{}")
# Deep enough to blow json's recursion limit, short enough not to be cut at MAX_RESPONSE_BYTES.
DEEP = 30_000


@pytest.fixture(autouse=True)
def inline_publishing(settings):
    """No broker: publishes are inline (tests/conftest.py takes the broker as up)."""
    settings.EVENTING = {**settings.EVENTING, "PUBLISH_IN_BACKGROUND": False}


def number(body: bytes) -> int:
    """The `n` of the event a request carries."""
    return json.loads(body)["data"]["n"]


def burst(trigger, count: int) -> list[EventLog]:
    """`count` events of the trigger's type, payload {"n": 0…count-1}."""
    return [emit(trigger.type, {"n": n})[0] for n in range(count)]


def by_number(event_type: str) -> dict[int, EventLog]:
    return {row.payload["n"]: row for row in EventLog.objects.filter(type=event_type)}


# Item 6: Retry-After and one row's exception in a batch


@pytest.mark.parametrize("value", ["²", "١٢", "1²", "Mon, 01 Jan 99999 00:00:00 GMT"])
def test_an_unreadable_retry_after_counts_as_absent_and_spares_the_batch(serve, value):
    server = serve(
        answer_by(
            lambda body: (
                http_response(429, b"", {"Retry-After": value}) if number(body) == 7 else OK
            )
        )
    )
    trigger = TriggerFactory(type="burst", url=server.url("/"), retries=3)
    events = burst(trigger, 20)

    results = deliver_events([str(e.id) for e in events], trigger.pk)

    assert len(results) == 20
    assert len(server.requests) == 20  # each event sent once
    rows = by_number("burst")
    bad = rows.pop(7)
    assert (bad.status, bad.attempts, bad.last_status_code) == (EventStatus.STAGED, 1, 429)
    assert bad.remark.startswith("HTTP 429; attempt 1 of 4, next in")
    # Absent Retry-After: plain backoff from the trigger's base (0.2 s ± 20 %).
    assert results[bad.id].retry_in_s <= 0.25
    assert {(r.status, r.attempts) for r in rows.values()} == {(EventStatus.PROCESSED, 1)}
    assert InvocationLog.objects.filter(event__type="burst").count() == 20


def test_a_row_whose_outcome_raises_is_its_own_failed_attempt(serve, monkeypatch):
    server = serve(answer_by(lambda body: OK))
    trigger = TriggerFactory(type="burst", url=server.url("/"), retries=3)
    events = burst(trigger, 10)
    real_decide = delivery.decide

    def decide(response, **kwargs):
        if '"n":3}' in response.request.get("body", ""):
            raise RuntimeError("a bug in the outcome rules")
        return real_decide(response, **kwargs)

    monkeypatch.setattr(delivery, "decide", decide)

    deliver_events([str(e.id) for e in events], trigger.pk)

    assert len(server.requests) == 10
    rows = by_number("burst")
    bad = rows.pop(3)
    assert (bad.status, bad.attempts, bad.last_status_code) == (EventStatus.STAGED, 1, 200)
    assert "Reply not understood: RuntimeError: a bug in the outcome rules" in bad.remark
    invocation = bad.invocations.get()
    assert invocation.response_status_code == 200
    assert "RuntimeError" in invocation.error_msg
    assert {(r.status, r.attempts) for r in rows.values()} == {(EventStatus.PROCESSED, 1)}
    assert InvocationLog.objects.filter(event__type="burst").count() == 10


def test_a_dead_letter_that_cannot_be_emitted_spares_the_batch(serve, settings):
    # A payload at the size limit makes a dead letter (which carries it) over the limit.
    settings.EVENTING = {**settings.EVENTING, "MAX_PAYLOAD_BYTES": 300}
    server = serve(answer_by(lambda body: http_response(500, b"")))
    trigger = TriggerFactory(type="big", url=server.url("/"), retries=0)
    events = [emit("big", {"n": n, "pad": "x" * 250})[0] for n in range(3)]

    deliver_events([str(e.id) for e in events], trigger.pk)

    for row in EventLog.objects.filter(type="big"):
        assert (row.status, row.attempts) == (EventStatus.FAILED, 1)
        assert row.remark.startswith("HTTP 500 (attempt 1 of 1); Not applied")
        assert row.invocations.count() == 1
    assert len(server.requests) == 3


# Item 7: a 2xx reply nested too deep to parse


def test_a_deep_reply_is_a_success_without_follow_ups(serve):
    server = serve(reply(nested_reply(DEEP)))
    trigger = TriggerFactory(type="deep", url=server.url("/"))
    event = emit("deep", {"n": 0})[0]

    result = deliver_event(event.id, trigger.pk)

    assert result.outcome.succeeded
    row = EventLog.objects.get(id=event.id)
    assert (row.status, row.attempts, row.remark) == (EventStatus.PROCESSED, 1, "")
    assert row.invocations.get().response_status_code == 200
    assert EventLog.objects.count() == 1


def test_deep_replies_in_a_batch_are_successes(serve):
    server = serve(answer_by(lambda body: nested_reply(DEEP)))
    trigger = TriggerFactory(type="deep", url=server.url("/"))
    events = burst(trigger, 5)

    deliver_events([str(e.id) for e in events], trigger.pk)

    assert len(server.requests) == 5
    assert {(r.status, r.attempts) for r in by_number("deep").values()} == {
        (EventStatus.PROCESSED, 1)
    }
    assert EventLog.objects.count() == 5


def test_a_synchronous_queue_with_a_deep_reply_answers_200(serve, client):
    server = serve(reply(nested_reply(DEEP)))
    EventTypeFactory(name="deep_sync")
    TriggerFactory(name="deep_hook", type="deep_sync", url=server.url("/"))

    response = client.post(
        QUEUE_URL,
        {"type": "deep_sync", "payload": {}, "isSynchronous": True},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content[:300]
    assert response.json()["result"].startswith('{"event": [[[')  # the reply, as text
    assert EventLog.objects.get().status == EventStatus.PROCESSED


# Item 9: follow-up events obey queue rules and schemas, cannot forge dead letters, are bounded


def ask(receiver, path: str, wanted) -> EventLog:
    """An event whose webhook replies `wanted` on `path`, delivered once; the row after it."""
    receiver.replies[path] = wanted
    trigger = TriggerFactory(type="asker", url=receiver.url(path))
    event = emit("asker", {})[0]
    deliver_event(event.id, trigger.pk)
    return EventLog.objects.get(id=event.id)


@pytest.mark.parametrize(
    ("rule", "queued"),
    [
        (EventType.QueueRule.ALLOW, True),
        (EventType.QueueRule.AUTHENTICATED, False),
        (EventType.QueueRule.PERMISSION, False),
        (EventType.QueueRule.DENY, False),
        (None, False),
    ],
)
def test_follow_ups_obey_the_queue_rule_as_an_anonymous_caller(receiver, rule, queued):
    if rule is not None:
        EventTypeFactory(name="wanted", queue_rule=rule)
    TriggerFactory(name="catch", type="wanted")

    row = ask(receiver, "/reply/rule", {"event": {"type": "wanted", "payload": {"a": 1}}})

    assert row.status == EventStatus.PROCESSED
    assert EventLog.objects.filter(type="wanted").exists() == queued
    if queued:
        assert row.remark == ""
    else:
        assert row.remark.startswith("Follow-ups: [0] refused: ")
        assert "'wanted'" in row.remark


def test_the_default_rule_governs_a_type_without_its_own(receiver):
    EventTypeFactory(name="default")
    TriggerFactory(name="catch", type="wanted")

    ask(receiver, "/reply/default", {"event": {"type": "wanted", "payload": {}}})

    assert EventLog.objects.filter(type="wanted").count() == 1


def test_follow_ups_obey_the_types_schema(receiver):
    schema = {"type": "object", "properties": {"qty": {"type": "integer"}}, "required": ["qty"]}
    EventTypeFactory(name="stock", schema=schema)
    TriggerFactory(name="catch", type="stock")

    row = ask(
        receiver,
        "/reply/schema",
        {
            "events": [
                {"type": "stock", "payload": {"qty": "many"}},
                {"type": "stock", "payload": {"qty": 3}},
            ]
        },
    )

    assert [e.payload for e in EventLog.objects.filter(type="stock")] == [{"qty": 3}]
    assert row.remark.startswith("Follow-ups: [0] refused: payload.qty: ")


@pytest.mark.parametrize("forged", ["dlq_victim", "DLQ_victim"])
def test_a_reply_cannot_forge_a_dead_letter(receiver, forged):
    EventTypeFactory(name="default")  # anyone may queue anything else
    TriggerFactory(name="victim", type="victims_type")
    TriggerFactory(name="dead_letters", type=forged)
    fake = {"event_id": "0", "event_type": "x", "trigger": "victim"}

    row = ask(receiver, "/reply/forge", {"event": {"type": forged, "payload": fake}})

    assert not EventLog.objects.filter(type=forged).exists()
    assert "dead-letter types are emitted only by Eventing" in row.remark


def test_one_reply_queues_at_most_the_cap(receiver, settings):
    settings.EVENTING = {**settings.EVENTING, "FOLLOW_UP_MAX_PER_REPLY": 4}
    EventTypeFactory(name="fanned")
    TriggerFactory(name="catch", type="fanned")
    wanted = {"events": [{"type": "fanned", "payload": {"i": i}} for i in range(15)]}

    row = ask(receiver, "/reply/fan", wanted)

    assert sorted(e.payload["i"] for e in EventLog.objects.filter(type="fanned")) == [0, 1, 2, 3]
    assert row.status == EventStatus.PROCESSED
    assert "11 of 15 dropped: at most 4 per reply" in row.remark


def test_a_follow_up_loop_stops_at_the_chain_depth(receiver, settings):
    settings.EVENTING = {**settings.EVENTING, "FOLLOW_UP_MAX_DEPTH": 3}
    EventTypeFactory(name="ping")
    trigger = TriggerFactory(name="pinger", type="ping", url=receiver.url("/reply/ping"))
    # Each reply asks for two more pings: unbounded, one event would become thousands.
    receiver.replies["/reply/ping"] = {"events": [{"type": "ping", "payload": {}}] * 2}
    emit("ping", {})

    for _ in range(6):  # more rounds than the depth; without the bound it never runs dry
        staged = list(EventLog.objects.filter(type="ping", status=EventStatus.STAGED))
        if not staged:
            break
        for event in staged:
            deliver_event(event.id, trigger.pk)

    chain = list(EventLog.objects.filter(type="ping"))
    assert sorted(depth_of(e) for e in chain) == [0] + [1] * 2 + [2] * 4 + [3] * 8
    assert {e.status for e in chain} == {EventStatus.PROCESSED}
    for event in chain:
        if depth_of(event) == 3:
            assert event.remark == (
                "Follow-ups: 2 not queued: chain depth 3 reached (EVENTING['FOLLOW_UP_MAX_DEPTH'])."
            )
        else:
            assert event.remark == ""
    child = next(e for e in chain if depth_of(e) == 2)
    parent_id = child.source.split(":")[1]
    assert depth_of(EventLog.objects.get(id=parent_id)) == 1


def test_a_2xx_reply_with_an_error_is_retried(receiver):
    receiver.replies["/reply/err"] = {"error": "out of stock", "event": {"type": "x"}}
    trigger = TriggerFactory(type="order", url=receiver.url("/reply/err"), retries=1)
    event = emit("order", {})[0]

    deliver_event(event.id, trigger.pk)

    row = EventLog.objects.get(id=event.id)
    assert (row.status, row.last_status_code) == (EventStatus.STAGED, 200)
    assert row.remark.startswith("HTTP 200 with error: out of stock; attempt 1 of 2")
    assert row.invocations.get().error_msg == row.remark
    assert EventLog.objects.count() == 1  # a failed attempt queues no follow-ups


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_follow_up_loop_through_a_worker_ends(worker, receiver):
    EventTypeFactory(name="loop")
    TriggerFactory(name="looper", type="loop", url=receiver.url("/reply/loop"))
    # Every delivery asks for two more: unbounded, this grows without end.
    receiver.replies["/reply/loop"] = {"events": [{"type": "loop", "payload": {}}] * 2}
    depth = 5  # FOLLOW_UP_MAX_DEPTH's default, which the worker process uses
    expected = 2 ** (depth + 1) - 1  # 1 + 2 + 4 + … + 32

    # The follow-ups are matched in the worker, which sees a trigger created here within
    # TRIGGER_CACHE_TTL_S: the first event is due after that, so the chain never meets a
    # snapshot older than the trigger.
    emit("loop", {}, delay_s=1.0)

    def settled() -> bool:
        open_rows = EventLog.objects.filter(type="loop").exclude(status=EventStatus.PROCESSED)
        return EventLog.objects.filter(type="loop").count() >= expected and not open_rows.exists()

    wait_until(settled, timeout_s=60, message=f"{expected} loop events processed")
    # No staged row is left, so nothing can queue more: the chain is over.
    chain = list(EventLog.objects.filter(type="loop"))
    assert len(chain) == expected
    deepest = [e for e in chain if depth_of(e) == depth]
    assert len(deepest) == 2**depth
    assert all("chain depth 5 reached" in e.remark for e in deepest)
    assert len(receiver.on("/reply/loop")) >= expected
