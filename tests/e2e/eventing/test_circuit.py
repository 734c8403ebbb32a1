"""The circuit breaker and the retry policy: real worker, real receiver, rows as the truth."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from eventing import emit
from eventing.delivery import circuit
from eventing.delivery.outcome import Outcome
from eventing.models import CircuitState, EventLog, EventStatus, TriggerCircuit
from tests.factories import TriggerFactory
from tests.waiting import wait_until
from triggers.models import Trigger


def status_of(event_id) -> str:
    return EventLog.objects.get(id=event_id).status


def circuit_state(trigger) -> str | None:
    return TriggerCircuit.objects.filter(trigger=trigger).values_list("state", flat=True).first()


def finished(event) -> bool:
    return status_of(event.id) in (EventStatus.PROCESSED, EventStatus.FAILED)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_circuit_opens_after_n_failures_probes_and_closes(worker, receiver):
    TriggerFactory(type=circuit.OPENED, url=receiver.url("/ok/opened"))
    TriggerFactory(type=circuit.CLOSED, url=receiver.url("/ok/closed"))
    # 500 for the first four calls: three open the circuit, the first probe fails too. The
    # backoff between the first event's attempts also lets the worker's trigger cache (0.2 s)
    # see the watchers before the circuit opens.
    trigger = TriggerFactory(
        type="order_placed",
        url=receiver.url("/flaky/4"),
        retries=2,
        backoff_base_s=0.3,
        circuit_failures=3,
    )
    [first] = emit("order_placed", {"n": 0})
    wait_until(lambda: finished(first), message="first event failed")
    wait_until(lambda: circuit_state(trigger) == CircuitState.OPEN, message="circuit open")

    waiting = [emit("order_placed", {"n": n})[0] for n in (1, 2)]

    for event in waiting:
        wait_until(lambda event=event: status_of(event.id) == EventStatus.PROCESSED)
    # While the circuit was open only probes reached the receiver: a failed one, then the one
    # that closed it; the other waiting event (or the failed probe's retry) followed the close.
    assert len(receiver.on("/flaky/4")) == 3 + 3
    # Waiting used no attempt: three between them, the failed probe's and one each to succeed.
    assert sum(EventLog.objects.get(id=e.id).attempts for e in waiting) == 3
    assert circuit_state(trigger) == CircuitState.CLOSED

    [opened] = receiver.wait_for("/ok/opened")
    assert opened.json()["type"] == circuit.OPENED
    assert opened.json()["data"]["trigger"] == trigger.name
    assert opened.json()["data"]["consecutive_failures"] == 3
    assert "HTTP 500" in opened.json()["data"]["reason"]
    [closed] = receiver.wait_for("/ok/closed")
    assert closed.json()["data"]["trigger"] == trigger.name
    assert closed.json()["data"]["opened_at"] == opened.json()["data"]["opened_at"]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_failing_subscriber_of_circuit_events_does_not_feed_itself(worker, receiver):
    healthy = TriggerFactory(type=circuit.OPENED, url=receiver.url("/ok/watch"))
    failing_watcher = TriggerFactory(
        type=circuit.OPENED, url=receiver.url("/status/500"), retries=0, circuit_failures=1
    )
    # Two attempts, 0.5 s apart: the worker's trigger cache (0.2 s) sees the watchers in time.
    broken = TriggerFactory(
        type="order_placed",
        url=receiver.url("/status/503"),
        retries=1,
        backoff_base_s=0.5,
        circuit_failures=2,
    )
    emit("order_placed", {"n": 1})

    # broken opens → both watchers hear of it; the failing watcher opens → only the healthy
    # one hears of that.
    calls = receiver.wait_for("/ok/watch", count=2)
    assert sorted(c.json()["data"]["trigger"] for c in calls) == sorted(
        [broken.name, failing_watcher.name]
    )
    assert circuit_state(failing_watcher) == CircuitState.OPEN
    about = EventLog.objects.filter(type=circuit.OPENED, trigger=failing_watcher)
    assert [row.payload["trigger"] for row in about] == [broken.name]
    assert EventLog.objects.filter(type=circuit.OPENED, trigger=healthy).count() == 2


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_404_fails_at_once_and_503_is_retried_under_the_default_policy(worker, receiver):
    not_found = TriggerFactory(type="order_placed", url=receiver.url("/status/404"), retries=3)
    unavailable = TriggerFactory(
        type="order_placed",
        url=receiver.url("/retry-after/503/0"),
        retries=1,
        backoff_base_s=0.1,
    )
    emit("order_placed", {"n": 1})
    [lost] = EventLog.objects.filter(trigger=not_found)
    [retried] = EventLog.objects.filter(trigger=unavailable)

    wait_until(lambda: finished(lost) and finished(retried), message="both events failed")
    lost.refresh_from_db()
    retried.refresh_from_db()
    assert (lost.status, lost.attempts) == (EventStatus.FAILED, 1)
    assert "404 is not retried under the trigger's retry policy" in lost.remark
    assert len(receiver.on("/status/404")) == 1
    assert (retried.status, retried.attempts) == (EventStatus.FAILED, 2)
    assert len(receiver.on("/retry-after/503/0")) == 2


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_retry_everything_retries_a_404(worker, receiver):
    trigger = TriggerFactory(
        type="order_placed", url=receiver.url("/status/404"), retries=1, retry_policy="all"
    )
    [event] = emit("order_placed", {"n": 1})
    wait_until(lambda: finished(event), message="event failed")
    assert len(receiver.on("/status/404")) == 2
    assert EventLog.objects.get(id=event.id).attempts == 2
    assert trigger.retry_policy == "all"


# The rules of the shared state, without a worker: one probe at a time, pause after long
# failure.


def failure() -> Outcome:
    return Outcome(EventStatus.STAGED, remark="HTTP 500", retry_in_s=1.0)


@pytest.mark.django_db
def test_only_one_worker_takes_the_probe():
    trigger = TriggerFactory(circuit_failures=2)
    now = timezone.now()
    circuit.record(trigger, circuit.OPEN_GATE, [failure(), failure()], now)
    assert circuit_state(trigger) == CircuitState.OPEN

    later = now + dt.timedelta(hours=1)
    first = circuit.admit(trigger, later)
    second = circuit.admit(trigger, later)
    assert (first.probe, first.holds) == (True, False)
    assert (second.probe, second.holds) == (False, True)
    assert second.until > later


@pytest.mark.django_db
def test_failures_spanning_disable_after_pause_the_trigger(settings):
    settings.EVENTING = {**settings.EVENTING, "DISABLE_AFTER_S": 3 * 24 * 3600}
    watcher = TriggerFactory(type=circuit.PAUSED, url="http://127.0.0.1:9/ok")
    trigger = TriggerFactory(circuit_failures=5)
    start = timezone.now() - dt.timedelta(days=4)
    circuit.record(trigger, circuit.OPEN_GATE, [failure()], start)
    trigger.refresh_from_db()
    assert not trigger.paused

    circuit.record(trigger, circuit.OPEN_GATE, [failure()], start + dt.timedelta(days=3, hours=1))

    trigger = Trigger.objects.get(pk=trigger.pk)
    assert trigger.paused
    assert "every attempt failed for 3.0 days" in trigger.paused_reason
    [event] = EventLog.objects.filter(type=circuit.PAUSED, trigger=watcher)
    assert event.payload["trigger"] == trigger.name
    assert event.payload["consecutive_failures"] == 2
