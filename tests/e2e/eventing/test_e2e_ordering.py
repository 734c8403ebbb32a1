"""End to end, two worker processes and a real receiver: ordered keys arrive in order, keys
interleave, and a failing head holds only its own key."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import pytest
from django.db import transaction

from eventing import emit
from eventing.dispatch.operations import cancel_events
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory
from tests.processes import CeleryProcess
from tests.receiver import Receiver
from tests.waiting import wait_until

# `stacks`: the broker and the database engine decide this outcome; make test runs it on each.
pytestmark = [pytest.mark.e2e, pytest.mark.stacks, pytest.mark.django_db(transaction=True)]

KEYS = 20
PER_KEY = 50


class HeadFails(Receiver):
    """/keyed answers 500 to the event with key k0 and seq 0 (recorded on /status/500)."""

    def handle(self, handler, body):
        data = json.loads(body).get("data", {})
        if handler.path == "/keyed" and (data.get("key"), data.get("seq")) == ("k0", 0):
            handler.path = "/status/500"
        super().handle(handler, body)


@pytest.fixture
def head_fails():
    server = HeadFails()
    yield server
    server.close()


def emit_keyed(event_type: str, keys: int, per_key: int, *, commit_every: int = 100) -> list:
    """keys × per_key events whose keys take turns (k0 seq 0, k1 seq 0, … k0 seq 1, …)."""
    ids = []
    items = [(f"k{i % keys}", i // keys) for i in range(keys * per_key)]
    for start in range(0, len(items), commit_every):
        with transaction.atomic():
            for key, seq in items[start : start + commit_every]:
                ids += [e.id for e in emit(event_type, {"key": key, "seq": seq})]
    return ids


def arrivals_by_key(receiver: Receiver, path: str) -> dict[str, list[int]]:
    """The seq numbers of each key, in the order they reached the receiver."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for request in sorted(receiver.on(path), key=lambda r: r.at):
        data = request.json()["data"]
        by_key[data["key"]].append(data["seq"])
    return by_key


def deliveries_logged(worker: CeleryProcess) -> int:
    return len(re.findall(r"Task eventing\.deliver(_batch)?\[[0-9a-f-]+\] succeeded", worker.log()))


def test_keyed_events_arrive_in_order_per_key_while_keys_interleave(two_workers, receiver):
    TriggerFactory(type="keyed", ordering_key="key", url=receiver.url("/keyed"))

    emit_keyed("keyed", KEYS, PER_KEY)

    receiver.wait_for("/keyed", KEYS * PER_KEY, timeout_s=240)
    by_key = arrivals_by_key(receiver, "/keyed")
    assert by_key == {f"k{k}": list(range(PER_KEY)) for k in range(KEYS)}
    # Keys flowed side by side: consecutive arrivals are mostly of different keys.
    keys = [r.json()["data"]["key"] for r in sorted(receiver.on("/keyed"), key=lambda r: r.at)]
    switches = sum(a != b for a, b in zip(keys, keys[1:], strict=False))
    assert switches > len(keys) // 2
    wait_until(
        lambda: EventLog.objects.filter(status=EventStatus.PROCESSED).count() == KEYS * PER_KEY,
        timeout_s=30,
        message="every event processed",
    )
    # Both worker processes delivered.
    assert all(deliveries_logged(worker) > 0 for worker in two_workers)


def test_a_failing_head_holds_only_its_key_until_it_is_cancelled(two_workers, head_fails):
    TriggerFactory(
        type="keyed_fail",
        ordering_key="key",
        url=head_fails.url("/keyed"),
        retries=50,
        backoff_base_s=0.2,
        backoff_max_s=0.5,
    )
    emit_keyed("keyed_fail", 10, 10)

    # Every other key is delivered in full while k0's head keeps failing.
    head_fails.wait_for("/keyed", 90, timeout_s=120)
    head_fails.wait_for("/status/500", 3, timeout_s=30)
    by_key = arrivals_by_key(head_fails, "/keyed")
    assert "k0" not in by_key
    assert by_key == {f"k{k}": list(range(10)) for k in range(1, 10)}
    head = EventLog.objects.get(payload__key="k0", payload__seq=0)
    behind = EventLog.objects.filter(payload__key="k0").exclude(id=head.id)
    assert set(behind.values_list("status", "attempts")) == {(EventStatus.STAGED, 0)}

    # Cancelling the head lets the rest of its key through, in order.
    wait_until(lambda: cancel_events([head.id]), timeout_s=10, message="head staged to cancel")
    head_fails.wait_for("/keyed", 99, timeout_s=60)
    assert arrivals_by_key(head_fails, "/keyed")["k0"] == list(range(1, 10))
