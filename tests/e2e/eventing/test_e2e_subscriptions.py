"""End to end: owners' subscriptions delivered by a real worker to loopback receivers."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from standardwebhooks import Webhook

from eventing import emit
from eventing.dispatch.operations import cancel_events
from eventing.models import EventLog, EventStatus, PublicEventType
from eventing.subscriptions import services
from tests.factories import TriggerFactory
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def catalog():
    for name in ("invoice_paid", "invoice_voided"):
        PublicEventType.objects.create(name=name, description=name, example={"id": 0})


@pytest.fixture
def owners():
    users = get_user_model().objects
    return users.create_user("owner_a"), users.create_user("owner_b")


def test_events_of_owner_a_reach_only_a_endpoints(worker, receiver, catalog, owners):
    alice, bob = owners
    for owner in (alice, bob):
        name = owner.username
        services.create_subscription(
            owner, url=receiver.url(f"/ok/{name}/paid"), types=["invoice_paid"]
        )
        services.create_subscription(
            owner,
            url=receiver.url(f"/ok/{name}/all"),
            types=["invoice_paid", "invoice_voided"],
        )
    TriggerFactory(name="operators_paid", type="invoice_paid", url=receiver.url("/ok/operators"))

    for n in range(3):
        emit("invoice_paid", {"n": n, "owner": "a"}, owner=alice)
    emit("invoice_voided", {"n": 9, "owner": "a"}, owner=alice)
    emit("invoice_paid", {"n": 0, "owner": "b"}, owner=bob)
    emit("invoice_paid", {"n": 0, "owner": None})  # no owner: no subscription receives it

    a_paid = receiver.wait_for("/ok/owner_a/paid", 3)
    a_all = receiver.wait_for("/ok/owner_a/all", 4)
    b_paid = receiver.wait_for("/ok/owner_b/paid", 1)
    b_all = receiver.wait_for("/ok/owner_b/all", 1)
    operators = receiver.wait_for("/ok/operators", 5)
    wait_until(
        lambda: not EventLog.objects.exclude(status=EventStatus.PROCESSED).exists(),
        message="every event processed",
    )

    assert {r.json()["data"]["owner"] for r in a_paid + a_all} == {"a"}
    assert {r.json()["data"]["owner"] for r in b_paid + b_all} == {"b"}
    assert sorted(r.json()["type"] for r in a_all) == ["invoice_paid"] * 3 + ["invoice_voided"]
    # Exactly these: nothing more arrived at any owner's endpoint once all were processed.
    assert len(receiver.on("/ok/owner_a/paid")) == 3
    assert len(receiver.on("/ok/owner_b/paid")) == 1
    assert len(receiver.on("/ok/owner_b/all")) == 1
    assert {r.json()["data"]["owner"] for r in operators} == {"a", "b", None}


def test_rotation_grace_verified_with_old_and_new_secret(worker, receiver, catalog, owners):
    alice, _ = owners
    subscription, old = services.create_subscription(
        alice, url=receiver.url("/ok/rotated"), types=["invoice_paid"]
    )
    new = services.rotate_subscription_secret(subscription)

    emit("invoice_paid", {"id": 1}, owner=alice)
    [request] = receiver.wait_for("/ok/rotated")

    assert new != old
    for secret in (old, new):
        assert Webhook(secret).verify(request.body, request.headers)["data"] == {"id": 1}


def test_owner_b_is_not_held_behind_owner_a_slow_endpoint(worker, receiver, catalog, owners):
    """A's endpoint answers in 3 s; 40 of A's events queue first. B's 10 events all arrive
    while most of A's still wait: a slow owner holds SUBSCRIPTION_MAX_IN_FLIGHT slots, not all."""
    alice, bob = owners
    slow, _ = services.create_subscription(
        alice, url=receiver.url("/slow/3"), types=["invoice_paid"]
    )
    services.create_subscription(bob, url=receiver.url("/ok/b"), types=["invoice_paid"])

    for n in range(40):
        emit("invoice_paid", {"n": n}, owner=alice)
    for n in range(10):
        emit("invoice_paid", {"n": n}, owner=bob)

    receiver.wait_for("/ok/b", 10, timeout_s=60)
    a_done = EventLog.objects.filter(
        trigger_id=slow.trigger_id, status=EventStatus.PROCESSED
    ).count()
    a_arrived = len(receiver.on("/slow/3"))

    waiting = EventLog.objects.filter(
        trigger_id=slow.trigger_id, status__in=(EventStatus.STAGED,)
    ).values_list("id", flat=True)
    cancel_events(list(waiting), reason="test over")
    assert a_done < 40
    assert a_arrived < 40
