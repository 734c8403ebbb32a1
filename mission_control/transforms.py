"""The trigger form's live preview: the request a transform makes, rendered, never sent."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from eventing.models import EventLog
from eventing.webhooks.request import WebhookConfigError, build_request
from triggers.models import Trigger
from triggers.validation import validate_transform

# What the form sends that shapes the request.
PREVIEW_FIELDS = (
    "url",
    "transform_method",
    "transform_url",
    "transform_query",
    "transform_headers",
    "transform_body",
)


def preview_trigger(submitted: dict[str, Any], stored: Trigger | None) -> Trigger:
    """The stored trigger (or a new one) with the form's transform on top, never saved."""
    trigger = stored if stored is not None else Trigger(name="new_trigger", type="preview")
    for name in PREVIEW_FIELDS:
        if name in submitted:
            value = submitted[name]
            if name in ("transform_query", "transform_headers"):
                value = json.loads(value) if isinstance(value, str) and value.strip() else {}
            setattr(trigger, name, value)
    trigger.name = submitted.get("name") or trigger.name
    return trigger


def preview_event(trigger: Trigger, stored: Trigger | None, sample: Any) -> tuple[EventLog, str]:
    """The event to render over: the sample payload if given, else the trigger's latest event,
    else an empty payload; and words saying which."""
    if sample is None and stored is not None:
        latest = EventLog.objects.filter(trigger=stored).order_by("-created_at").first()
        if latest is not None:
            return latest, f"latest event {latest.id} ({latest.type})"
    event = EventLog(
        id=uuid.uuid4(),
        type=trigger.type,
        trigger_name=trigger.name,
        payload={} if sample is None else sample,
        created_at=timezone.now(),
    )
    return event, "the sample payload" if sample is not None else "an empty payload"


def preview_request(
    submitted: dict[str, Any], stored: Trigger | None, sample: Any = None
) -> dict[str, Any]:
    """What the webhook call would send (credentials redacted), or the error that stops it."""
    try:
        trigger = preview_trigger(submitted, stored)
    except ValueError as exc:
        return {"error": f"Not JSON: {exc}"}
    try:
        validate_transform(trigger)
    except ValidationError as exc:
        return {"error": "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())}
    event, source = preview_event(trigger, stored, sample)
    try:
        request = build_request(event, trigger, attempt=1)
    except (WebhookConfigError, ValueError) as exc:
        return {"error": str(exc), "event": source}
    return {
        "event": source,
        "method": request.method,
        "url": request.logged_url,
        "headers": request.redacted_headers,
        "body": request.body.decode("utf-8", errors="replace"),
    }
