"""Delivering one event: load → claim → send → record the invocation → apply the outcome."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from eventing.conf import settings
from eventing.delivery import rows
from eventing.delivery.dead_letters import emit_dead_letter
from eventing.delivery.follow_ups import emit_follow_ups
from eventing.delivery.outcome import Outcome, decide
from eventing.delivery.senders import pool as sender_pool
from eventing.dispatch.lag import note_claim
from eventing.dispatch.publish import within_horizon
from eventing.models import EventLog, EventStatus
from eventing.ops.metrics import observe_delivery
from eventing.recording.trigger_cache import get_trigger, invalidate
from eventing.webhooks.request import WebhookConfigError, WebhookResponse, build_request, send
from triggers.models import Trigger

logger = logging.getLogger(__name__)


@dataclass
class DeliveryResult:
    """What `deliver_event` did: skipped (with why), too early, or attempted."""

    skipped: str = ""
    early_until: dt.datetime | None = None
    attempt: int = 0
    response: WebhookResponse | None = None
    outcome: Outcome | None = None
    event: EventLog | None = None

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
    event = rows.claim(
        event_id, lease_until=now + lease(trigger), now=now, force=force, trigger_id=trigger.pk
    )
    if event is None:
        return why_not_claimed(event_id, now)
    note_claim(event, now)  # tells the sweeper how long messages wait in the queue
    done = make_attempt(event, trigger)
    finish(event, trigger, done.attempt, now, done.response, done.outcome)
    observe_delivery(event, trigger, now, done.response, done.outcome)
    return done


def deliver_events(event_ids: list, trigger_id: int | None) -> dict:
    """Deliver a batch of one trigger's events: claimed together, sent side by side, recorded
    together. A DeliveryResult per event id."""
    ids = [EventLog._meta.pk.to_python(pk) for pk in event_ids]
    results: dict = {}
    senders = sender_pool()
    while ids:
        # Looked up again for every chunk: a 410 in the last one paused the trigger.
        trigger = get_trigger(trigger_id)
        if trigger is None or not trigger.enabled or trigger.paused:
            results.update({pk: not_deliverable(pk, trigger) for pk in ids})
            break
        # Claim no more rows than there are free sender threads: each is sent at once, so
        # its lease holds.
        slots = senders.reserve(len(ids))
        chunk, ids = ids[:slots], ids[slots:]
        now = timezone.now()
        try:
            claimed = rows.claim_many(
                chunk, lease_until=now + lease(trigger), now=now, trigger_id=trigger.pk
            )
        except BaseException:
            senders.release(slots)
            raise
        senders.release(slots - len(claimed))
        if claimed:
            note_claim(claimed[0], now)
        done = senders.run(functools.partial(make_attempt, trigger=trigger), claimed)
        finish_batch(trigger, now, done)
        for event, result in zip(claimed, done, strict=True):
            observe_delivery(event, trigger, now, result.response, result.outcome)
            results[event.id] = result
        results.update(why_not_claimed_many([pk for pk in chunk if pk not in results], now))
    return results


def lease(trigger: Trigger) -> dt.timedelta:
    """How long a claimed row stays ours: the trigger's timeout plus LEASE_GRACE_S."""
    return dt.timedelta(seconds=trigger.timeout_ms / 1000 + settings.LEASE_GRACE_S)


def make_attempt(event: EventLog, trigger: Trigger) -> DeliveryResult:
    """Call the webhook for a claimed row and decide what its answer means."""
    try:
        response = call_webhook(event, trigger, event.attempts)
    except Exception as exc:  # noqa: BLE001 - see judge(): a row's bug stays that row's
        logger.exception("Event %s: the webhook call raised", event.id)
        response = WebhookResponse(
            error=f"Not sent: {type(exc).__name__}: {exc}",
            request={"url": trigger.url, "headers": {}, "body": None},
        )
    outcome = judge(event, trigger, response)
    return DeliveryResult(attempt=event.attempts, response=response, outcome=outcome, event=event)


def judge(event: EventLog, trigger: Trigger, response: WebhookResponse) -> Outcome:
    """The outcome rules applied to a reply; a reply they cannot read is a failed attempt.

    Runs on a sender thread for one row of a batch: an exception here must not reach the
    batch, which would leave every row of it `processing` with no attempt recorded.
    """
    now = timezone.now()
    try:
        # A refused address (SSRF guard) will be refused again: fail now, no retry.
        return decide(
            response, attempt=event.attempts, trigger=trigger, now=now, permanent=response.blocked
        )
    except Exception as exc:  # noqa: BLE001 - recorded as this row's failed attempt instead
        logger.exception("Event %s: the reply could not be judged", event.id)
        unreadable = WebhookResponse(error=f"Reply not understood: {type(exc).__name__}: {exc}")
        return decide(unreadable, attempt=event.attempts, trigger=trigger, now=now)


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
    return why_not_claimed_many([event_id], now)[event_id]


def why_not_claimed_many(event_ids: list, now: dt.datetime) -> dict:
    """why_not_claimed for several rows, in one query."""
    if not event_ids:
        return {}
    found = {
        row["id"]: row
        for row in EventLog.objects.filter(id__in=event_ids).values("id", "status", "deliver_at")
    }
    return {pk: explain(found.get(EventLog._meta.pk.to_python(pk)), now) for pk in event_ids}


def explain(row: dict | None, now: dt.datetime) -> DeliveryResult:
    """Why a row (its status and due time) was not claimed."""
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
    result = DeliveryResult(attempt=attempt, response=response, outcome=outcome, event=event)
    return event.id in finish_batch(trigger, started, [result])


def finish_batch(trigger: Trigger, started: dt.datetime, done: list[DeliveryResult]) -> set:
    """Record a batch's invocations and move its rows on: one UPDATE per kind of outcome, the
    invocations riding along when there is one. The ids of the rows that were still ours."""
    invocations = [invocation(r.event, r.attempt, started, r.response, r.outcome) for r in done]
    now = timezone.now()
    alike: dict[tuple, list[DeliveryResult]] = {}
    own: list[tuple[DeliveryResult, dict]] = []
    for result in done:
        changes = changes_for(result.response, result.outcome, now)
        if needs_transaction(result.response, result.outcome):
            own.append((result, changes))
        else:
            # Successes of one batch mostly share every change: one UPDATE moves them all.
            alike.setdefault((result.attempt, tuple(changes.items())), []).append(result)
    if own or len(alike) > 1:
        # The invocations first: if we die before the rows move on, their leases expire and
        # they are delivered again (at-least-once) — an attempt is never left unrecorded.
        rows.insert_invocations(invocations)
        invocations = []
    applied = set()
    for result, changes in own:
        event, attempt = result.event, result.attempt
        if move_on_alone(event, trigger, attempt, result.response, result.outcome, changes):
            applied.add(event.id)
        log_finish(event, trigger, attempt, result.outcome, event.id in applied)
    for (attempt_no, changes), group in alike.items():
        # One kind of outcome: the invocations go in the same statement (see rows.finish_many).
        applied |= rows.finish_many(
            [r.event.id for r in group],
            attempt=attempt_no,
            changes=dict(changes),
            invocations=invocations,
        )
        for r in group:
            log_finish(r.event, trigger, attempt_no, r.outcome, r.event.id in applied)
    return applied


def invocation(
    event: EventLog,
    attempt: int,
    started: dt.datetime,
    response: WebhookResponse,
    outcome: Outcome,
) -> dict:
    """The invocation_logs row of one attempt."""
    return {
        "event": event.id,
        "attempt": attempt,
        "invoked_at": started,
        "duration_ms": response.duration_ms,
        "request": response.request,
        "response_status_code": response.status_code,
        "response_headers": response.headers,
        "response_body": response.body,
        "error_msg": "" if outcome.succeeded else outcome.remark,
        "succeeded": outcome.succeeded,
    }


def changes_for(response: WebhookResponse, outcome: Outcome, now: dt.datetime) -> dict:
    """The columns an outcome sets on the row."""
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
    return changes


def needs_transaction(response: WebhookResponse, outcome: Outcome) -> bool:
    """Whether moving the row on causes more writes (pause, dead letter, follow-ups)."""
    follow_ups = outcome.succeeded and has_follow_ups(response)
    return bool(outcome.pause_reason or outcome.gave_up or follow_ups)


def move_on_alone(
    event: EventLog,
    trigger: Trigger,
    attempt: int,
    response: WebhookResponse,
    outcome: Outcome,
    changes: dict,
) -> bool:
    """move_on(), but if what the outcome causes raises, the row still moves on (saying so).

    The other rows of the batch are finished after this one: an exception escaping here would
    leave them `processing` until their leases ran out, and deliver them again.
    """
    try:
        return move_on(event, trigger, attempt, response, outcome, changes)
    except Exception as exc:  # noqa: BLE001 - the atomic block rolled back; finish plainly
        logger.exception("Event %s: applying the outcome of attempt %s failed", event.id, attempt)
        note = f"Not applied (pause, dead letter or follow-ups): {type(exc).__name__}: {exc}"
        remark = f"{changes['remark']}; {note}" if changes["remark"] else note
        return rows.finish(event.id, attempt=attempt, changes={**changes, "remark": remark})


def move_on(
    event: EventLog,
    trigger: Trigger,
    attempt: int,
    response: WebhookResponse,
    outcome: Outcome,
    changes: dict,
) -> bool:
    """Apply the outcome to the row if it is still ours, with what it causes; True if it was."""
    if not needs_transaction(response, outcome):
        return rows.finish(event.id, attempt=attempt, changes=changes)
    # The row's state and what it causes (pause, dead letter, follow-ups) commit together.
    with transaction.atomic(using=settings.DATABASE):
        applied = rows.finish(event.id, attempt=attempt, changes=changes)
        if applied and outcome.pause_reason:
            pause_trigger(trigger.pk, outcome.pause_reason)
        if applied and outcome.gave_up:
            emit_dead_letter(event, trigger)
        if applied and outcome.succeeded and has_follow_ups(response):
            # Imported here: follow-ups reuse the queue API's rule and schema checks, and
            # that module imports this one.
            note = emit_follow_ups(event, response)
            if note:
                EventLog.objects.filter(id=event.id).update(remark=note)
    return applied


def log_finish(
    event: EventLog, trigger: Trigger, attempt: int, outcome: Outcome, applied: bool
) -> None:
    """One log line per attempt, or a warning when the lease was lost before it finished."""
    extra = {"event_id": str(event.id), "trigger": trigger.name}
    if not applied:
        logger.warning(
            "Event %s: lease lost before attempt %s finished", event.id, attempt, extra=extra
        )
        return
    log = logger.info if outcome.succeeded else logger.warning
    log(
        "Event %s trigger=%s attempt=%s status=%s %s",
        event.id,
        trigger.name,
        attempt,
        outcome.status,
        outcome.remark,
        extra=extra,
    )


def has_follow_ups(response: WebhookResponse) -> bool:
    """Cheap test before parsing: could this 2xx body ask for follow-up events?"""
    return '"event' in response.body


def pause_trigger(trigger_id: int, reason: str) -> None:
    """Pause a trigger with a visible reason (a 410 reply does this)."""
    Trigger.objects.filter(pk=trigger_id).update(
        paused=True, paused_reason=reason, updated_at=timezone.now()
    )
    invalidate()


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
