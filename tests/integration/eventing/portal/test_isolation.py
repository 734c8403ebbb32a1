"""Every portal route, walked from the URLconf, with owner B on owner A's objects: a 404,
never a 403, and nothing of A's changed; by B's portal link and by B's host login alike."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import get_resolver, reverse

from eventing.models import EventLog, Subscription
from eventing.subscriptions import services
from tests.integration.eventing.portal.conftest import portal_client
from tests.support.owner_routes import walk

pytestmark = pytest.mark.django_db

# Every object a portal route can name, by its URL argument; `token` is the link itself
# (tests/integration/eventing/portal/test_links.py).
OBJECT_ARGUMENTS = {"pk", "event_id"}
LINK_ARGUMENTS = {"token"}


def routes() -> list[tuple[str, set[str]]]:
    """(name, argument names) of every portal route in the project's URLconf, where the host
    mounted eventing.portal.urls (a route added there later is walked too)."""
    return [
        (route.name.removeprefix("eventing_portal:"), set(route.kwargs))
        for route in walk(get_resolver().url_patterns)
        if route.name.startswith("eventing_portal:")
    ]


@pytest.fixture
def alices(catalog, owners, receiver):
    """Alice's subscription and a delivered event of it (a real delivery to a receiver)."""
    alice, _ = owners
    subscription, secret = services.create_subscription(
        alice, url=receiver.url("/alice"), types=["invoice_paid"], description="alice's"
    )
    sent = services.send_test(subscription)
    assert sent.delivered
    return subscription, sent.event, secret


def object_routes() -> list[tuple[str, set[str]]]:
    return [(name, args) for name, args in routes() if args & OBJECT_ARGUMENTS]


def test_the_walk_covers_every_route():
    """A new route either names an object the walk fills, or none; nothing unknown."""
    found = routes()
    assert len(object_routes()) >= 10
    assert all(args <= OBJECT_ARGUMENTS | LINK_ARGUMENTS for _, args in found)


@pytest.mark.parametrize("by", ["link", "host-login"])
def test_another_owners_objects_answer_404_on_every_route(alices, owners, receiver, by):
    subscription, event, secret = alices
    alice, bob = owners
    if by == "link":
        bob_client = portal_client(bob)
    else:
        bob_client = Client()
        bob_client.force_login(bob)
    alice_client = portal_client(alice)
    before = EventLog.objects.filter(trigger_id=subscription.trigger_id).count()
    walked = []

    for name, args in object_routes():
        kwargs = {"pk": subscription.pk, "event_id": event.pk}
        url = reverse(f"eventing_portal:{name}", kwargs={k: kwargs[k] for k in args})
        for method in ("get", "post"):
            # What Alice gets for the same request tells an unknown object from a method the
            # route does not take at all (405 for anyone); GETs only, so nothing of hers moves.
            theirs = getattr(bob_client, method)(url, {"confirm": "on", "enabled": "0"})
            assert theirs.status_code != 403, (url, method)
            if theirs.status_code == 405:
                assert method == "post" or alice_client.get(url).status_code == 405, url
                continue
            assert theirs.status_code == 404, (url, method, theirs.status_code)
            assert secret.encode() not in theirs.content
            walked.append((name, method))

    assert {name for name, _ in walked} == {name for name, _ in object_routes()}
    # Alice's objects are as they were: not deleted, not disabled, same secret, nothing sent.
    subscription.refresh_from_db()
    subscription.trigger.refresh_from_db()
    assert subscription.enabled is True
    assert subscription.trigger.signing_secret == secret
    assert EventLog.objects.filter(trigger_id=subscription.trigger_id).count() == before
    assert EventLog.objects.get(pk=event.pk).status == "processed"
    for name, args in object_routes():
        kwargs = {"pk": subscription.pk, "event_id": event.pk}
        url = reverse(f"eventing_portal:{name}", kwargs={k: kwargs[k] for k in args})
        assert alice_client.get(url).status_code in (200, 405), url


def test_an_owners_own_pages_list_nothing_of_another(alices, owners):
    subscription, event, _ = alices
    _, bob = owners
    client = portal_client(bob)
    for name, args in routes():
        if args:
            continue
        response = client.get(reverse(f"eventing_portal:{name}"), follow=True)
        assert response.status_code in (200, 405), name
        assert str(subscription.pk).encode() not in response.content, name
        assert subscription.trigger.url.encode() not in response.content, name
        assert str(event.pk).encode() not in response.content, name


def test_one_owners_event_under_another_of_its_subscriptions_is_404(alices, owners, receiver):
    """A delivery is found through its own subscription only, even for the same owner."""
    subscription, event, _ = alices
    alice, _ = owners
    other, _ = services.create_subscription(
        alice, url=receiver.url("/alice-2"), types=["invoice_paid"]
    )
    client = portal_client(alice)
    url = reverse("eventing_portal:delivery", kwargs={"pk": other.pk, "event_id": event.pk})
    assert client.get(url).status_code == 404
    assert Subscription.objects.filter(pk=other.pk).exists()
