"""The per-process trigger cache: matching and delivery read one snapshot, so they agree."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from eventing import emit
from eventing.delivery.deliver import deliver_event
from eventing.models import EventLog
from eventing.store.trigger_cache import current_index, get_trigger
from tests.factories import TriggerFactory
from tests.waiting import wait_until
from triggers.models import Trigger

pytestmark = pytest.mark.django_db


@pytest.fixture
def ttl_s(settings, message_per_event):
    """Set TRIGGER_CACHE_TTL_S for the test (after `published` has set its own keys)."""

    def use(seconds: float) -> None:
        settings.EVENTING = {**settings.EVENTING, "TRIGGER_CACHE_TTL_S": seconds}

    return use


def test_a_local_change_is_seen_at_once_by_matching_and_delivery(ttl_s):
    ttl_s(3600)
    hook = TriggerFactory(name="a", type="DB_INSERT", source="testapp.Order", url="http://a.test/")
    assert get_trigger(hook.pk).url == "http://a.test/"
    hook.url = "http://b.test/"
    hook.save()
    TriggerFactory(name="b", type="DB_INSERT", source="testapp.Order")

    index = current_index()
    assert [t.name for t in index.find("DB_INSERT", "testapp.Order")] == ["a", "b"]
    assert index.db_models["testapp.Order"] == frozenset({"DB_INSERT"})
    assert get_trigger(hook.pk).url == "http://b.test/"
    hook.delete()
    assert get_trigger(hook.pk) is None


def test_a_change_made_elsewhere_waits_for_the_ttl_and_lookups_cost_no_query(ttl_s):
    ttl_s(3600)
    hook = TriggerFactory(type="order_placed")
    assert current_index().find("order_placed")
    assert get_trigger(hook.pk).enabled
    # A queryset update sends no signal: just like an edit made by another process.
    Trigger.objects.filter(pk=hook.pk).update(enabled=False)
    with CaptureQueriesContext(connection) as queries:
        assert current_index().find("order_placed")
        assert get_trigger(hook.pk).enabled
    assert queries.captured_queries == []


def test_a_change_made_elsewhere_is_seen_within_the_ttl_by_both(ttl_s):
    ttl_s(0.2)
    hook = TriggerFactory(type="order_placed")
    assert get_trigger(hook.pk).enabled
    Trigger.objects.filter(pk=hook.pk).update(enabled=False)
    wait_until(lambda: not current_index().find("order_placed"), message="the index reloaded")
    assert get_trigger(hook.pk).enabled is False


def test_matching_and_delivery_agree_after_any_invalidation(ttl_s, receiver):
    """One snapshot: once emit stops matching a trigger, delivery stops sending to it too.

    The caches used to be two: a local save of one trigger reloaded the index but dropped only
    that trigger from delivery's, which went on sending for another trigger disabled elsewhere.
    """
    ttl_s(3600)
    hook = TriggerFactory(type="agreed", url=receiver.url("/ok/agreed"))
    staged = emit("agreed", {"n": 1})[0]
    assert get_trigger(hook.pk).enabled  # delivery's view, warm
    Trigger.objects.filter(pk=hook.pk).update(enabled=False)  # elsewhere: no signal here
    TriggerFactory(type="unrelated")  # a change in this process

    assert emit("agreed", {"n": 2}) == []
    result = deliver_event(staged.id, hook.pk)

    assert result.skipped == "trigger paused or disabled"
    assert receiver.on("/ok/agreed") == []
    assert EventLog.objects.get(id=staged.id).attempts == 0
