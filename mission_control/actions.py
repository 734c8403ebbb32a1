"""What operators do from Mission Control, as plain functions the admin actions call.

Event state changes go through `eventing.dispatch.operations`; trigger changes are config and go
through the named functions here, so a test can call each one without a request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from eventing.capture.database import triggers_changing
from eventing.conf import settings
from eventing.delivery import synchronous
from eventing.dispatch import operations
from eventing.models import EventLog, EventStatus
from eventing.recording.emit import record_test_event
from eventing.store.secrets import rotate_secret
from triggers import types
from triggers.defaults import new_signing_secret
from triggers.models import Trigger

REDELIVER_CHUNK = 500


def set_enabled(trigger_ids: Iterable[int], enabled: bool) -> int:
    """Enable or disable triggers; returns how many changed (capture follows: a disabled
    trigger needs no function)."""
    queryset = Trigger.objects.filter(pk__in=list(trigger_ids)).exclude(enabled=enabled)
    with triggers_changing(queryset.db):
        return _update_triggers(queryset, enabled=enabled)


def pause_triggers(trigger_ids: Iterable[int], reason: str = "Paused by an operator") -> int:
    """Pause triggers: their events are still recorded and held as staged (so capture, which
    records them, needs no change)."""
    return _update_triggers(
        Trigger.objects.filter(pk__in=list(trigger_ids), paused=False),
        paused=True,
        paused_reason=reason,
    )


def resume_triggers(trigger_ids: Iterable[int]) -> int:
    """Resume paused triggers; the sweeper sends their held events."""
    return _update_triggers(
        Trigger.objects.filter(pk__in=list(trigger_ids), paused=True),
        paused=False,
        paused_reason="",
    )


def _update_triggers(queryset, **changes: Any) -> int:
    """Save each trigger so post_save refreshes this process's trigger index."""
    count = 0
    with transaction.atomic(using=queryset.db):
        for trigger in queryset.select_for_update():
            for name, value in changes.items():
                setattr(trigger, name, value)
            trigger.save(update_fields=[*changes, "updated_at"])
            count += 1
    return count


def rotate_signing_secret(trigger: Trigger) -> str:
    """Give a trigger a fresh `whsec_` secret; returns it (receivers need the new one). The
    old one keeps signing beside it for EVENTING["SECRET_ROTATION_GRACE_S"]."""
    return rotate_secret(trigger)


def duplicate_trigger(trigger: Trigger) -> Trigger:
    """Copy a trigger under a free name `<name>_copy[_n]`, disabled, with its own secret."""
    base = f"{trigger.name}_copy"[:90]
    name, n = base, 1
    while Trigger.objects.filter(name=name).exists():
        n += 1
        name = f"{base}_{n}"
    copy = Trigger.objects.get(pk=trigger.pk)
    copy.pk = None
    copy.name = name
    copy.enabled = False
    copy.paused = False
    copy.paused_reason = ""
    copy.signing_secret = new_signing_secret()
    copy.save()  # disabled: capture has nothing to change until it is enabled
    return copy


@dataclass
class TestEventResult:
    """The outcome of a test event: its id, status and what the webhook answered."""

    __test__ = False  # not a pytest class

    event_id: str
    status: str
    succeeded: bool = False  # the webhook took the event, by the outcome rules
    status_code: int | None = None
    reply: str = ""
    error: str = ""
    skipped: str = ""

    def summary(self) -> str:
        """One line for the operator."""
        if self.skipped:
            return f"Test event {self.event_id} not sent: {self.skipped}."
        code = self.status_code if self.status_code is not None else "no response"
        text = f"Test event {self.event_id}: {self.status} (HTTP {code})"
        if self.error:
            text += f" — {self.error}"
        if self.reply:
            text += f"; reply: {self.reply[:300]}"
        return text


def sample_payload(trigger: Trigger) -> dict[str, Any]:
    """A payload shaped like the trigger's real events, marked as a test."""
    now = timezone.now().isoformat()
    if types.is_db_type(trigger.type):
        app_label, _, model = trigger.source.partition(".")
        row = {"id": None, "test": True}
        return {
            "db": settings.DATABASE,
            "model": trigger.source,
            "table": f"{app_label.lower()}_{model.lower()}",
            "pk": None,
            "old": None if trigger.type == types.DB_INSERT else row,
            "new": None if trigger.type == types.DB_DELETE else row,
            **({"changed": []} if trigger.type == types.DB_UPDATE else {}),
            "test": True,
        }
    if types.is_file_type(trigger.type):
        return {
            "storage": trigger.source,
            "name": "eventing-test.txt",
            "size": 0,
            "content_type": "text/plain",
            "url": None,
            "meta": {},
            "path": "/eventing-test.txt",
            "type": "file",
            "test": True,
        }
    return {"test": True, "trigger": trigger.name, "sent_at": now}


def send_test_event(trigger: Trigger, payload: Any = None) -> TestEventResult:
    """Record a test event for this trigger only and deliver it now, as the API's test does."""
    payload = sample_payload(trigger) if payload is None else payload
    event = record_test_event(trigger, payload, source="mission-control:test")
    [result] = synchronous.deliver_now([event])
    event.refresh_from_db()
    response = result.response
    return TestEventResult(
        event_id=str(event.id),
        status=event.status,
        succeeded=synchronous.delivered(result),
        status_code=response.status_code if response else None,
        reply=(response.body if response else "") or "",
        error="" if result.skipped else synchronous.why_not_delivered(result),
        skipped=result.skipped,
    )


def redeliver(event_ids: Iterable) -> int:
    """Stage finished events again (processed, failed or cancelled); returns how many."""
    return operations.redeliver_events(list(event_ids))


def cancel(event_ids: Iterable) -> int:
    """Cancel staged or intent events; returns how many."""
    return operations.cancel_events(list(event_ids), reason="Cancelled in Mission Control")


def failed_event_ids(trigger_id: int, since: dt.datetime) -> list:
    """Ids of the trigger's failed events created since `since` (indexed: trigger, status, time)."""
    return list(
        EventLog.objects.filter(
            trigger_id=trigger_id, status=EventStatus.FAILED, created_at__gte=since
        ).values_list("id", flat=True)
    )


def replay_window(data: dict[str, Any]) -> operations.Replay:
    """The window a replay form describes (its cleaned data)."""
    trigger = data.get("trigger")
    return operations.Replay(
        since=data["since"],
        until=data["until"],
        statuses=tuple(data["statuses"]),
        triggers=(trigger.name,) if trigger else (),
        types=(data["type"],) if data.get("type") else (),
    )


def redeliver_failed_since(trigger_id: int, since: dt.datetime) -> int:
    """Redeliver every failed event of a trigger created since `since`; returns how many."""
    ids = failed_event_ids(trigger_id, since)
    total = 0
    for start in range(0, len(ids), REDELIVER_CHUNK):
        total += operations.redeliver_events(ids[start : start + REDELIVER_CHUNK])
    return total
