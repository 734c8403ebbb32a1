"""Follow-up events: one root event's whole chain records at most FOLLOW_UP_MAX_TOTAL rows."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from eventing import emit
from eventing.delivery.deliver import deliver_event
from eventing.delivery.follow_ups import depth_of, root_of
from eventing.dispatch.operations import redeliver_events
from eventing.models import EventLog, EventStatus, FollowUpBudget
from eventing.tasks import cleanup
from eventing.testing import capture_emits, fake_receiver
from tests.factories import EventTypeFactory, TriggerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def inline_publishing(settings):
    """No broker: publishes are inline (tests/conftest.py takes the broker as up)."""
    settings.EVENTING = {**settings.EVENTING, "PUBLISH_IN_BACKGROUND": False}


def test_one_anonymous_event_reaches_at_most_the_default_budget(webhook_receiver):
    """Attack: one anonymous event whose receiver answers every delivery with ten follow-ups
    of the same `allow` type (the issue saw 21,891 events in 20 s; the ceiling was 111,111).

    With the default FOLLOW_UP_MAX_TOTAL of 100, the chain stops at 100 follow-ups, and the
    events whose replies were dropped say so in their remark.
    """
    EventTypeFactory(name="storm")
    TriggerFactory(name="stormer", type="storm")
    webhook_receiver.reply(200, {"events": [{"type": "storm", "payload": {}}] * 10})
    [root] = emit("storm", {})

    # The root queues 10, those would queue 100 (90 fit), those 900: the flush delivers each
    # row once, follow-ups included, until none is left staged.
    webhook_receiver.flush()

    assert len(webhook_receiver.requests) == 101
    chain = list(EventLog.objects.filter(type="storm"))
    follow_ups = [e for e in chain if depth_of(e) > 0]
    assert len(follow_ups) == 100
    assert {root_of(e) for e in chain} == {str(root.id)}
    assert FollowUpBudget.objects.get(root_id=root.id).used == 100
    assert not EventLog.objects.filter(type="storm", status=EventStatus.STAGED).exists()
    dropped = [e for e in chain if "FOLLOW_UP_MAX_TOTAL" in e.remark]
    assert dropped
    assert all(
        e.remark.startswith("Follow-ups: ") and f"the chain of event {root.id}" in e.remark
        for e in dropped
    )


def test_the_budget_counts_rows_of_every_trigger_a_follow_up_reaches(settings):
    """Attack: a follow-up type with three triggers triples each follow-up; the budget counts
    the rows recorded, so the fan-out is inside it."""
    settings.EVENTING = {**settings.EVENTING, "FOLLOW_UP_MAX_TOTAL": 10}
    EventTypeFactory(name="fan")
    for n in range(3):
        TriggerFactory(name=f"fan_{n}", type="fan")
    TriggerFactory(name="asker", type="asker")
    reply = {"events": [{"type": "fan", "payload": {}}] * 10}
    with capture_emits() as emitted, fake_receiver(200, reply):
        [root] = emit("asker", {})
        deliver_event(root.id, root.trigger_id)

    fans = emitted.assert_emitted("fan", count=9)  # three follow-ups of 3 rows each
    assert all(fan.source.endswith(f"root={root.id}") for fan in fans)
    row = EventLog.objects.get(id=root.id)
    assert row.status == EventStatus.PROCESSED
    assert row.remark == (
        f"Follow-ups: 7 not queued: the chain of event {root.id} has queued its 10 follow-up "
        "events (EVENTING['FOLLOW_UP_MAX_TOTAL'])."
    )


def test_redelivering_an_event_of_the_chain_spends_the_same_budget(receiver, settings):
    """Attack: redeliver the root (or retry any event of the chain) to get a fresh budget.

    The budget belongs to the root and is kept across redeliveries: nothing more is queued.
    """
    settings.EVENTING = {**settings.EVENTING, "FOLLOW_UP_MAX_TOTAL": 5}
    EventTypeFactory(name="again")
    TriggerFactory(name="catch", type="again", url=receiver.url("/reply/catch"))
    TriggerFactory(name="asker", type="asker", url=receiver.url("/reply/ask"))
    receiver.replies["/reply/ask"] = {"events": [{"type": "again", "payload": {}}] * 4}
    receiver.replies["/reply/catch"] = {"events": [{"type": "again", "payload": {}}] * 4}
    [root] = emit("asker", {})
    deliver_event(root.id, root.trigger_id)
    assert EventLog.objects.filter(type="again").count() == 4

    assert redeliver_events([root.id]) == 1
    deliver_event(root.id, root.trigger_id)
    child = EventLog.objects.filter(type="again").first()
    deliver_event(child.id, child.trigger_id)
    assert redeliver_events([child.id]) == 1
    deliver_event(child.id, child.trigger_id)

    assert EventLog.objects.filter(type="again").count() == 5
    assert FollowUpBudget.objects.get(root_id=root.id).used == 5
    assert "FOLLOW_UP_MAX_TOTAL" in EventLog.objects.get(id=child.id).remark


def test_cleanup_deletes_the_budgets_of_old_chains_whose_root_is_gone():
    """One budget row per root would otherwise grow forever; a live root keeps its budget."""
    [kept_root] = emit_rows("kept")
    old = timezone.now() - dt.timedelta(days=400)
    gone = FollowUpBudget.objects.create(root_id=uuid.uuid4(), used=100)
    recent = FollowUpBudget.objects.create(root_id=uuid.uuid4(), used=3)
    kept = FollowUpBudget.objects.create(root_id=kept_root.id, used=7)
    FollowUpBudget.objects.filter(pk__in=[gone.pk, kept.pk]).update(created_at=old)

    cleanup()

    assert set(FollowUpBudget.objects.values_list("root_id", flat=True)) == {
        recent.root_id,
        kept.root_id,
    }


def emit_rows(event_type: str) -> list[EventLog]:
    TriggerFactory(type=event_type)
    return emit(event_type, {})
