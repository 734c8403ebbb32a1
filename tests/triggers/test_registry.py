"""The per-process trigger index: fresh after local changes at once, others within the TTL."""

import time

import pytest

from tests.factories import TriggerFactory
from triggers import registry
from triggers.models import Trigger

pytestmark = pytest.mark.django_db


def test_local_change_is_seen_at_once():
    registry.get_index(ttl_s=3600)
    TriggerFactory(name="a", type="DB_INSERT", source="testapp.Order")
    index = registry.get_index(ttl_s=3600)
    assert [t.name for t in index.find("DB_INSERT", "testapp.Order")] == ["a"]
    assert index.db_models["testapp.Order"] == frozenset({"DB_INSERT"})


def test_change_from_another_process_is_seen_after_the_ttl():
    trigger = TriggerFactory(name="a", type="order_placed")
    assert registry.get_index(ttl_s=0.2).find("order_placed")
    # A queryset update sends no signal: just like an edit made by another process.
    Trigger.objects.filter(pk=trigger.pk).update(enabled=False)
    assert registry.get_index(ttl_s=0.2).find("order_placed")  # still cached
    time.sleep(0.25)  # the TTL itself is what is under test
    assert not registry.get_index(ttl_s=0.2).find("order_placed")


def test_disabled_triggers_are_not_indexed():
    TriggerFactory(name="off", type="order_placed", enabled=False)
    assert registry.get_index(ttl_s=0).find("order_placed") == ()
