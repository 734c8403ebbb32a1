"""The index of enabled triggers, as `load_index()` builds it (the cache is eventing's)."""

import pytest

from tests.factories import TriggerFactory
from triggers.registry import load_index

pytestmark = pytest.mark.django_db


def test_triggers_are_indexed_by_type_and_source():
    TriggerFactory(name="a", type="DB_INSERT", source="testapp.Order")
    TriggerFactory(name="b", type="DB_DELETE", source="testapp.Order")
    TriggerFactory(name="c", type="order_placed")
    index = load_index()
    assert [t.name for t in index.find("DB_INSERT", "testapp.Order")] == ["a"]
    assert [t.name for t in index.find("order_placed")] == ["c"]
    assert index.db_models["testapp.Order"] == frozenset({"DB_INSERT", "DB_DELETE"})


def test_disabled_triggers_are_not_indexed():
    TriggerFactory(name="off", type="order_placed", enabled=False)
    assert load_index().find("order_placed") == ()
