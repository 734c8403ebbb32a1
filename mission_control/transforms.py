"""The trigger form's live preview: the request a transform makes, rendered, never sent.

A person reads the preview, so it shows only what that person may see: environment
placeholders as written (values are read only by the worker that sends), header values masked
as the trigger page masks them, and the trigger's latest event only to users who may view
event logs.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from eventing.models import EventLog
from eventing.recording.payload_rules import MAX_DEPTH
from eventing.webhooks.request import WebhookConfigError, build_request, nests_deeper_than
from triggers.masking import MASK
from triggers.models import Trigger
from triggers.validation import validate_transform

# What the form sends that shapes the request: text fields, and the two JSON maps.
PREVIEW_TEXT_FIELDS = ("name", "url", "transform_method", "transform_url", "transform_body")
PREVIEW_MAP_FIELDS = ("transform_query", "transform_headers")


class PreviewInputError(ValueError):
    """The preview's input is malformed; the message names the field (answered with a 400)."""


def preview_trigger(submitted: dict[str, Any], stored: Trigger | None) -> Trigger:
    """The stored trigger (or a new one) with the form's transform on top, never saved."""
    trigger = stored if stored is not None else Trigger(name="new_trigger", type="preview")
    for name in PREVIEW_TEXT_FIELDS:
        value = submitted.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise PreviewInputError(f"fields.{name}: expected text, got {type(value).__name__}")
        if value or name != "name":
            setattr(trigger, name, value)
    for name in PREVIEW_MAP_FIELDS:
        if name in submitted:
            setattr(trigger, name, json_map(submitted[name], f"fields.{name}"))
    return trigger


def json_map(value: Any, field: str) -> dict:
    """A JSON object given as text (or already parsed); empty text is an empty map."""
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise PreviewInputError(f"{field}: not JSON: {exc}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PreviewInputError(f"{field}: expected a JSON object")
    return value


def parse_sample(text: Any) -> Any:
    """The sample payload (JSON text; empty: none), refused when it nests too deeply."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise PreviewInputError("sample: expected JSON text")
    if not text.strip():
        return None
    try:
        sample = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PreviewInputError(f"sample: not JSON: {str(exc)[:200]}") from None
    if nests_deeper_than(sample, MAX_DEPTH):
        raise PreviewInputError(f"sample: nests deeper than {MAX_DEPTH} levels")
    return sample


def preview_event(
    trigger: Trigger, stored: Trigger | None, sample: Any, *, may_read_events: bool = True
) -> tuple[EventLog, str]:
    """The event to render over: the sample payload if given, else the trigger's latest event
    (to users who may view event logs), else an empty payload; and words saying which."""
    if sample is None and stored is not None and may_read_events:
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
    submitted: dict[str, Any],
    stored: Trigger | None,
    sample: Any = None,
    *,
    may_read_events: bool = True,
) -> dict[str, Any]:
    """What the webhook call would send (credentials redacted, environment placeholders as
    written, header values masked), or the error that stops it.

    Raises PreviewInputError when `submitted` is malformed.
    """
    trigger = preview_trigger(submitted, stored)
    try:
        validate_transform(trigger)
    except ValidationError as exc:
        return {"error": "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())}
    event, source = preview_event(trigger, stored, sample, may_read_events=may_read_events)
    try:
        request = build_request(event, trigger, attempt=1, resolve=False)
    except (WebhookConfigError, ValueError) as exc:
        return {"error": str(exc), "event": source}
    return {
        "event": source,
        "method": request.method,
        "url": request.logged_url,
        "headers": masked(request.redacted_headers, trigger),
        "body": request.logged_body,
    }


def masked(headers: dict[str, str], trigger: Trigger) -> dict[str, str]:
    """The trigger's own header values masked, as the trigger page shows them."""
    own = {h.get("name") for h in trigger.headers or [] if isinstance(h, dict)}
    return {name: MASK if name in own else value for name, value in headers.items()}
