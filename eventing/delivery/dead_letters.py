"""Dead letters: when an event's last attempt fails, `dlq_<trigger name>` carries it on."""

from __future__ import annotations

import json

from eventing.models import EventLog
from eventing.recording.emit import emit
from triggers import types
from triggers.models import Trigger


def emit_dead_letter(event: EventLog, trigger: Trigger) -> None:
    """Emit `dlq_<trigger>` with Space Cloud's fields for an event whose retries are spent."""
    emit(
        types.dlq_type(trigger.name),
        {
            "event_id": str(event.id),
            "event_type": event.type,
            # Space Cloud sends the payload as a JSON string; receivers parse it back.
            "event_payload": json.dumps(event.payload, separators=(",", ":")),
            "event_timestamp": event.deliver_at.isoformat(),
            "event_name": trigger.name,
            "trigger": trigger.name,
        },
        source=trigger.name,
    )
