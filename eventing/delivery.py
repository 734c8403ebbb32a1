"""Delivering one event: load → claim → send → record the invocation → apply the outcome."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from triggers import types
from triggers.models import Trigger

from . import rows
from .conf import settings
from .enqueue import within_horizon
from .lag import note_claim
from .metrics import observe_delivery
from .models import EventLog, EventStatus
from .outcome import Outcome, decide
from .transport import WebhookConfigError, WebhookResponse, build_request, send
from .trigger_cache import forget, get_trigger

logger = logging.getLogger(__name__)


@dataclass
class DeliveryResult:
    """What `deliver_event` did: skipped (with why), too early, or attempted."""

    skipped: str = ""
    early_until: dt.datetime | None = None
    attempt: int = 0
    response: WebhookResponse | None = None
    outcome: Outcome | None = None

    @property
    def retry_in_s(self) -> float | None:
        """Seconds until the next attempt, when the task should schedule one."""
        return self.outcome.retry_in_s if self.outcome and not self.skipped else None


def deliver_event(
    event_id, trigger_id: int | None = None, *, force: bool = False
) -> DeliveryResult:
    """Make one delivery attempt of a staged event, if it is due and nobody else has it.

    `trigger_id` (sent along in the task message) lets the claim go first, in one statement;
    `force` skips the due-time check (synchronous delivery from the API).
    """
    now = timezone.now()
    if trigger_id is None:
        trigger_id = (
            EventLog.objects.filter(id=event_id).values_list("trigger_id", flat=True).first()
        )
    trigger = get_trigger(trigger_id)
    if trigger is None or not trigger.enabled or trigger.paused:
        return not_deliverable(event_id, trigger)
    lease = dt.timedelta(seconds=trigger.timeout_ms / 1000 + settings.LEASE_GRACE_S)
    event = rows.claim(
        event_id, lease_until=now + lease, now=now, force=force, trigger_id=trigger.pk
    )
    if event is None:
        return why_not_claimed(event_id, now)
    note_claim(event, now)  # tells the sweeper how long messages wait in the queue
    attempt = event.attempts
    response = call_webhook(event, trigger, attempt)
    # A refused address (SSRF guard) will be refused again: fail now, no retry.
    outcome = decide(
        response, attempt=attempt, trigger=trigger, now=timezone.now(), permanent=response.blocked
    )
    finish(event, trigger, attempt, now, response, outcome)
    observe_delivery(event, trigger, now, response, outcome)
    return DeliveryResult(attempt=attempt, response=response, outcome=outcome)


def not_deliverable(event_id, trigger: Trigger | None) -> DeliveryResult:
    """The trigger is gone (cancel the event) or paused/disabled (hold it, no message)."""
    event = EventLog.objects.filter(id=event_id).only("id", "status", "trigger_name").first()
    if event is None:
        return DeliveryResult(skipped="no such event")
    if trigger is None:
        cancel_orphan(event, timezone.now())
        return DeliveryResult(skipped="trigger deleted")
    hold(event)
    return DeliveryResult(skipped="trigger paused or disabled")


def why_not_claimed(event_id, now: dt.datetime) -> DeliveryResult:
    """Explain a failed claim: gone, no longer staged, or not due yet."""
    row = EventLog.objects.filter(id=event_id).values("status", "deliver_at").first()
    if row is None:
        return DeliveryResult(skipped="no such event")
    if row["status"] != EventStatus.STAGED:
        return DeliveryResult(skipped=f"event is {row['status']}")
    if row["deliver_at"] > now:
        return DeliveryResult(skipped="not due yet", early_until=row["deliver_at"])
    return DeliveryResult(skipped="claimed by another worker")


def call_webhook(event: EventLog, trigger: Trigger, attempt: int) -> WebhookResponse:
    """Build and send the request; keep it on the response for the invocation log."""
    try:
        request = build_request(event, trigger, attempt)
    except (WebhookConfigError, ValueError) as exc:
        # ValueError: a stored payload JSON cannot carry (NaN, lone surrogates). Recorded as a
        # failed attempt instead of crashing the task and leaving the row `processing`.
        return WebhookResponse(
            error=f"Not sent: {exc}", request={"url": trigger.url, "headers": {}, "body": None}
        )
    response = send(request, trigger.timeout_ms / 1000)
    response.request = {
        "url": request.logged_url,
        "headers": request.redacted_headers,
        "body": event_body_for_log(request.body),
    }
    return response


def event_body_for_log(body: bytes) -> str:
    """The request body as stored: text, cut like responses are."""
    return body[: settings.MAX_PAYLOAD_BYTES + 1024].decode("utf-8", errors="replace")


def finish(
    event: EventLog,
    trigger: Trigger,
    attempt: int,
    started: dt.datetime,
    response: WebhookResponse,
    outcome: Outcome,
) -> bool:
    """Record the invocation, then move the row on; False if the lease was lost meanwhile."""
    now = timezone.now()
    changes = {
        "status": outcome.status,
        "locked_until": None,
        "last_status_code": response.status_code,
        "remark": outcome.remark,
    }
    if outcome.retry_in_s is not None:
        due = now + dt.timedelta(seconds=outcome.retry_in_s)
        changes["deliver_at"] = due
        changes["enqueued_at"] = now if within_horizon(due, now) else None
    else:
        changes["processed_at"] = now
    # The invocation first: if we die before the row moves on, the lease expires and the event
    # is delivered again (at-least-once) — an attempt is never left unrecorded.
    rows.insert_invocation(
        {
            "event": event.id,
            "attempt": attempt,
            "invoked_at": started,
            "duration_ms": response.duration_ms,
            "request": response.request,
            "response_status_code": response.status_code,
            "response_headers": response.headers,
            "response_body": response.body,
            "error_msg": "" if outcome.succeeded else outcome.remark,
        }
    )
    follow_ups = outcome.succeeded and has_follow_ups(response)
    if outcome.pause_reason or outcome.gave_up or follow_ups:
        # The row's state and what it causes (pause, dead letter, follow-ups) commit together.
        with transaction.atomic(using=settings.DATABASE):
            applied = rows.finish(event.id, attempt=attempt, changes=changes)
            if applied and outcome.pause_reason:
                pause_trigger(trigger.pk, outcome.pause_reason)
            if applied and outcome.gave_up:
                emit_dead_letter(event, trigger)
            if applied and follow_ups:
                emit_follow_ups(event, response)
    else:
        applied = rows.finish(event.id, attempt=attempt, changes=changes)
    if not applied:
        logger.warning(
            "Event %s: lease lost before attempt %s finished",
            event.id,
            attempt,
            extra={"event_id": str(event.id), "trigger": trigger.name},
        )
        return False
    log = logger.info if outcome.succeeded else logger.warning
    log(
        "Event %s trigger=%s attempt=%s status=%s %s",
        event.id,
        trigger.name,
        attempt,
        outcome.status,
        outcome.remark,
        extra={"event_id": str(event.id), "trigger": trigger.name},
    )
    return True


def has_follow_ups(response: WebhookResponse) -> bool:
    """Cheap test before parsing: could this 2xx body ask for follow-up events?"""
    return '"event' in response.body


def pause_trigger(trigger_id: int, reason: str) -> None:
    """Pause a trigger with a visible reason (a 410 reply does this)."""
    Trigger.objects.filter(pk=trigger_id).update(
        paused=True, paused_reason=reason, updated_at=timezone.now()
    )
    forget(trigger_id)


def emit_dead_letter(event: EventLog, trigger: Trigger) -> None:
    """Emit dlq_<trigger> for an event whose retries are spent."""
    from .emitter import emit

    emit(
        types.dlq_type(trigger.name),
        {
            "event_id": str(event.id),
            "event_type": event.type,
            "event_payload": event.payload,
            "event_timestamp": event.created_at.isoformat(),
            "trigger": trigger.name,
        },
        source=trigger.name,
    )


def emit_follow_ups(event: EventLog, response: WebhookResponse) -> None:
    """Queue the custom events a 2xx reply asks for: {"event": {…}} or {"events": […]}."""
    reply = response.json()
    if not isinstance(reply, dict):
        return
    wanted = reply.get("events") if "events" in reply else [reply.get("event")]
    if not isinstance(wanted, list):
        return
    from .emitter import emit

    for item in wanted:
        if not isinstance(item, dict) or not types.is_custom_type(str(item.get("type", ""))):
            continue
        delay_ms = item.get("delay")
        try:
            with transaction.atomic(using=settings.DATABASE):
                emit(
                    item["type"],
                    item.get("payload"),
                    delay_s=delay_ms / 1000 if isinstance(delay_ms, (int, float)) else None,
                    source=f"follow-up:{event.id}",
                )
        except Exception:  # noqa: BLE001 - a bad follow-up must not undo the delivery
            logger.warning("Event %s: follow-up event refused", event.id, exc_info=True)


def hold(event: EventLog) -> None:
    """Leave a paused trigger's event staged without a message; the sweeper sends it on resume."""
    EventLog.objects.filter(id=event.id, status=EventStatus.STAGED).update(enqueued_at=None)


def cancel_orphan(event: EventLog, now: dt.datetime) -> None:
    """An event whose trigger was deleted cannot be delivered."""
    EventLog.objects.filter(id=event.id, status=EventStatus.STAGED).update(
        status=EventStatus.CANCELLED,
        processed_at=now,
        remark=f"Trigger {event.trigger_name} was deleted",
    )
