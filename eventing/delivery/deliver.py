"""Delivering events, one loop for a batch of one trigger's events (a single event is a batch
of one): load → admit → claim → send → decide → record and finish, with the delivery policies
(eventing.delivery.policies: circuit, throttle, ordering, queue lag) at their named hooks."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time

from django.db import transaction
from django.utils import timezone

from eventing.conf import settings
from eventing.delivery.dead_letters import emit_dead_letter
from eventing.delivery.follow_ups import emit_follow_ups
from eventing.delivery.outcome import Outcome, decide
from eventing.delivery.policies import POLICIES
from eventing.delivery.policy import CLAIMED_ELSEWHERE, DeliveryResult, Run
from eventing.delivery.senders import pool as sender_pool
from eventing.dispatch.publish import publish, within_horizon
from eventing.models import EventLog, EventStatus
from eventing.ops.metrics import observe_delivery
from eventing.store import rows, transitions
from eventing.store.trigger_cache import get_trigger, invalidate
from eventing.webhooks.request import (
    TemplateFailed,
    WebhookConfigError,
    WebhookResponse,
    build_request,
    send,
)
from triggers.models import Trigger

logger = logging.getLogger(__name__)

__all__ = ["DeliveryResult", "deliver_event", "deliver_events", "send_next_attempt"]


def deliver_event(
    event_id, trigger_id: int | None = None, *, force: bool = False
) -> DeliveryResult:
    """Make one delivery attempt of a staged event, if it is due and nobody else has it.

    `trigger_id` (sent along in the task message) spares reading the row before the claim;
    `force` skips the due-time check and the circuit (synchronous delivery).
    """
    if trigger_id is None:  # the row is read only when the message did not name its trigger
        trigger_id = (
            EventLog.objects.filter(id=event_id).values_list("trigger_id", flat=True).first()
        )
    results = deliver_events([event_id], trigger_id, force=force)
    return results[EventLog._meta.pk.to_python(event_id)]


def deliver_events(event_ids: list, trigger_id: int | None, *, force: bool = False) -> dict:
    """Deliver a batch of one trigger's events: admitted by the policies, claimed together,
    sent side by side, finished with one statement per kind of outcome. A DeliveryResult per
    event id."""
    ids = [EventLog._meta.pk.to_python(pk) for pk in event_ids]
    results: dict = {}
    senders = sender_pool() if len(ids) > 1 else None
    began, followed = time.monotonic(), set()
    while ids:
        # Looked up again for every chunk: a 410 in the last one paused the trigger.
        trigger = get_trigger(trigger_id)
        if not may_deliver(trigger):
            results.update({pk: not_deliverable(pk, trigger) for pk in ids})
            break
        run = Run(trigger=trigger, now=timezone.now(), force=force, began=began)
        ids = admit(run, ids)
        results.update(run.results)
        if not ids:
            break
        # Claim no more rows than there are free sender threads: each is sent at once, so
        # its lease holds. A batch of one is sent on the calling thread.
        slots = senders.reserve(len(ids)) if senders else 1
        chunk, ids = ids[:slots], ids[slots:]
        run.now = timezone.now()
        try:
            claimed = claim_rows(run, chunk)
        except BaseException:
            if senders:
                senders.release(slots)
            raise
        for policy in POLICIES:
            policy.after_claim(run, claimed)
        if senders:
            senders.release(slots - len(claimed))
            done = senders.run(functools.partial(attempt, run=run), claimed)
        else:
            done = [attempt(event, run=run) for event in claimed]
        applied = finish_batch(done, trigger, started=run.now)
        for policy in POLICIES:
            policy.after_finish(run, done, applied)
        for result in done:
            observe_delivery(result.event, trigger, run.now, result.response, result.outcome)
            results[result.event.id] = result
        results.update(run.results)
        results.update(why_not_claimed(run, [pk for pk in chunk if pk not in results]))
        # Rows a policy released into the slots this pass freed go next, on this thread:
        # no trip through the broker's queue, which may be long behind other triggers.
        followed.update(run.follow)
        ids += [pk for pk in run.follow if pk not in results]
    for pk in followed & results.keys():
        # Not asked for by the caller: their next attempts are sent here.
        send_next_attempt(pk, results.pop(pk), trigger_id)
    return results


def send_next_attempt(event_id, result: DeliveryResult, trigger_id: int | None) -> bool:
    """Send the message that carries the event's next attempt, if it gets one; True if sent.

    Every path schedules a next attempt this way: retries and early arrivals alike, from the
    tasks or from a synchronous delivery. Beyond the horizon there is no message: the sweeper
    sends the row when nearly due.
    """
    if result.next_message_at is None:
        return False
    if publish(event_id, result.next_message_at, trigger_id=trigger_id):
        return True
    # Unmarked, the next sweep sends it (as after a failed publish on commit).
    transitions.unmark([event_id])
    return False


def message_eta(due: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """The one rule for an attempt due at `due`: a message with that ETA when it is within
    ETA_HORIZON_S of `now`; else None, and the sweeper sends the row when nearly due."""
    return due if within_horizon(due, now) else None


# Load and claim


def admit(run: Run, event_ids: list) -> list:
    """The ids every policy lets through now (the others get their result in run.results)."""
    for policy in POLICIES:
        event_ids = policy.admit(run, event_ids)
        if not event_ids:
            break
    return event_ids


def claim_rows(run: Run, event_ids: list) -> list[EventLog]:
    """Claim the rows (see store.rows.claim_many) through the policies' claim hooks, the first
    registered outermost; the claimed rows (those held back get their result in run.results)."""
    trigger = run.trigger
    lease_until = run.now + lease(trigger) + sum((p.lease(run) for p in POLICIES), dt.timedelta())
    claim = functools.partial(
        rows.claim_many,
        lease_until=lease_until,
        now=run.now,
        force=run.force,
        trigger_id=trigger.pk,
    )
    for policy in reversed(POLICIES):
        claim = functools.partial(policy.claim, run, claim=claim)
    return claim(event_ids)


def may_deliver(trigger: Trigger | None) -> bool:
    """Whether the trigger exists, is enabled and is not paused."""
    return trigger is not None and trigger.enabled and not trigger.paused


def lease(trigger: Trigger) -> dt.timedelta:
    """How long a claimed row stays ours: the trigger's timeout plus LEASE_GRACE_S."""
    return dt.timedelta(seconds=trigger.timeout_ms / 1000 + settings.LEASE_GRACE_S)


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


def hold(event: EventLog) -> None:
    """Leave a paused trigger's event staged without a message; the sweeper sends it on resume."""
    transitions.unmark([event.id])


def cancel_orphan(event: EventLog, now: dt.datetime) -> None:
    """An event whose trigger was deleted cannot be delivered."""
    transitions.cancel([event.id], f"Trigger {event.trigger_name} was deleted", now)


def why_not_claimed(run: Run, event_ids: list) -> dict:
    """Why each of these rows was not claimed (gone, no longer staged, not due yet, or what a
    policy says), in one query; a DeliveryResult per id."""
    if not event_ids:
        return {}
    found = {
        row["id"]: row
        for row in EventLog.objects.filter(id__in=event_ids).values("id", "status", "deliver_at")
    }
    results = {pk: explain(found.get(EventLog._meta.pk.to_python(pk)), run.now) for pk in event_ids}
    for policy in POLICIES:
        policy.not_claimed(run, results)
    return results


def explain(row: dict | None, now: dt.datetime) -> DeliveryResult:
    """Why a row (its status and due time) was not claimed."""
    if row is None:
        return DeliveryResult(skipped="no such event")
    if row["status"] != EventStatus.STAGED:
        return DeliveryResult(skipped=f"event is {row['status']}")
    if row["deliver_at"] > now:
        # Arrived before its time (clock skew, or the event was rescheduled): its attempt is
        # still to come, at its due time.
        due = row["deliver_at"]
        return DeliveryResult(
            skipped="not due yet", early_until=due, next_message_at=message_eta(due, now)
        )
    return DeliveryResult(skipped=CLAIMED_ELSEWHERE)


# Send and decide


def attempt(event: EventLog, run: Run) -> DeliveryResult:
    """Send a claimed row and decide what the reply means (a batch runs this per sender)."""
    for policy in POLICIES:
        policy.before_send(run, event)
    response = call_webhook(event, run.trigger)
    outcome = judge(event, run.trigger, response)
    return DeliveryResult(attempt=event.attempts, response=response, outcome=outcome, event=event)


def call_webhook(event: EventLog, trigger: Trigger) -> WebhookResponse:
    """Send the row's request; whatever goes wrong is a failed attempt of this row.

    In a batch this runs on a sender thread: an exception escaping it would leave every row
    of the batch `processing` with no attempt recorded.
    """
    try:
        return post(event, trigger)
    except Exception as exc:  # noqa: BLE001 - a row's bug stays that row's failed attempt
        logger.exception("Event %s: the webhook call raised", event.id)
        return not_sent(trigger, f"Not sent: {type(exc).__name__}: {exc}")


def post(event: EventLog, trigger: Trigger) -> WebhookResponse:
    """Build and send the request; keep it on the response for the invocation log."""
    try:
        request = build_request(event, trigger, event.attempts)
    except (WebhookConfigError, ValueError) as exc:
        # ValueError: a stored payload JSON cannot carry (NaN, lone surrogates).
        response = not_sent(trigger, f"Not sent: {exc}")
        response.unbuildable = isinstance(exc, TemplateFailed)
        return response
    response = send(request, trigger.timeout_ms / 1000)
    response.request = {
        "url": request.logged_url,
        "headers": request.redacted_headers,
        "body": request.logged_body,
    }
    if request.method != "POST":
        response.request["method"] = request.method
    return response


def not_sent(trigger: Trigger, error: str) -> WebhookResponse:
    """The response of an attempt whose request never left."""
    return WebhookResponse(
        error=error, not_sent=True, request={"url": trigger.url, "headers": {}, "body": None}
    )


def judge(event: EventLog, trigger: Trigger, response: WebhookResponse) -> Outcome:
    """The outcome rules applied to a reply; a reply they cannot read is a failed attempt
    (like call_webhook, it must not raise on a sender thread)."""
    now = timezone.now()
    try:
        # A refused address (SSRF guard) will be refused again, a failing request template fail
        # again: fail now, no retry.
        return decide(
            response,
            attempt=event.attempts,
            trigger=trigger,
            now=now,
            permanent=response.blocked or response.unbuildable,
        )
    except Exception as exc:  # noqa: BLE001 - recorded as this row's failed attempt instead
        logger.exception("Event %s: the reply could not be judged", event.id)
        unreadable = WebhookResponse(error=f"Reply not understood: {type(exc).__name__}: {exc}")
        return decide(unreadable, attempt=event.attempts, trigger=trigger, now=now)


# Record and finish


def finish_batch(done: list[DeliveryResult], trigger: Trigger, *, started: dt.datetime) -> set:
    """finish() for a batch: one UPDATE per kind of outcome (the invocations riding along when
    there is only one kind), a row whose outcome causes more on its own. The ids still ours."""
    invocations = [invocation_row(result, started) for result in done]
    now = timezone.now()
    alone: list[tuple[DeliveryResult, dict]] = []
    alike: dict[tuple, list[DeliveryResult]] = {}
    for result in done:
        changes = next_state(result, now)
        if causes_more(result):
            alone.append((result, changes))
        else:
            # Successes of one batch mostly share every change: one UPDATE moves them all.
            alike.setdefault((result.attempt, tuple(changes.items())), []).append(result)
    if alone or len(alike) > 1:
        # The invocations first: if we die before the rows move on, their leases expire and
        # they are delivered again (at-least-once); an attempt is never left unrecorded.
        rows.insert_invocations(invocations)
        invocations = []
    applied: set = set()
    for result, changes in alone:
        if move_on_alone(result, trigger, changes):
            applied.add(result.event.id)
        log_finish(result, trigger, result.event.id in applied)
    for (attempt_no, changes), group in alike.items():
        applied |= rows.finish_many(
            [result.event.id for result in group],
            attempt=attempt_no,
            changes=dict(changes),
            invocations=invocations,
        )
        for result in group:
            log_finish(result, trigger, result.event.id in applied)
    return applied


def invocation_row(result: DeliveryResult, started: dt.datetime) -> dict:
    """The invocation_logs row of one attempt."""
    response, outcome = result.response, result.outcome
    return {
        "event": result.event.id,
        "attempt": result.attempt,
        "invoked_at": started,
        "duration_ms": response.duration_ms,
        "request": response.request,
        "response_status_code": response.status_code,
        "response_headers": response.headers,
        "response_body": response.body,
        "error_msg": "" if outcome.succeeded else outcome.remark,
        "succeeded": outcome.succeeded,
    }


def next_state(result: DeliveryResult, now: dt.datetime) -> dict:
    """The columns the outcome sets on the row. A retry is due `retry_in_s` from `now`, and
    whether a message carries it is decided here, once (result.next_message_at)."""
    outcome = result.outcome
    changes = {
        "status": outcome.status,
        "locked_until": None,
        "last_status_code": result.response.status_code,
        "remark": outcome.remark,
    }
    if outcome.retry_in_s is None:
        changes["processed_at"] = now
        return changes
    due = now + dt.timedelta(seconds=outcome.retry_in_s)
    result.next_message_at = message_eta(due, now)
    changes["deliver_at"] = due
    changes["enqueued_at"] = now if result.next_message_at else None
    return changes


def causes_more(result: DeliveryResult) -> bool:
    """Whether moving the row on causes more writes (pause, dead letter, follow-ups)."""
    outcome = result.outcome
    follow_ups = outcome.succeeded and has_follow_ups(result.response)
    return bool(outcome.pause_reason or outcome.gave_up or follow_ups)


def move_on_alone(result: DeliveryResult, trigger: Trigger, changes: dict) -> bool:
    """move_on(), but if what the outcome causes raises, the row still moves on (saying so).

    The other rows of a batch are finished after this one: an exception escaping here would
    leave them `processing` until their leases ran out, and deliver them again.
    """
    try:
        return move_on(result, trigger, changes)
    except Exception as exc:  # noqa: BLE001 - the atomic block rolled back; finish plainly
        logger.exception(
            "Event %s: applying the outcome of attempt %s failed", result.event.id, result.attempt
        )
        note = f"Not applied (pause, dead letter or follow-ups): {type(exc).__name__}: {exc}"
        remark = f"{changes['remark']}; {note}" if changes["remark"] else note
        return rows.finish(
            result.event.id, attempt=result.attempt, changes={**changes, "remark": remark}
        )


def move_on(result: DeliveryResult, trigger: Trigger, changes: dict) -> bool:
    """Apply the outcome to the row if it is still ours, with what it causes; True if it was."""
    event, outcome = result.event, result.outcome
    # The row's state and what it causes (pause, dead letter, follow-ups) commit together.
    with transaction.atomic(using=settings.DATABASE):
        applied = rows.finish(event.id, attempt=result.attempt, changes=changes)
        if applied and outcome.pause_reason:
            pause_trigger(trigger.pk, outcome.pause_reason)
        if applied and outcome.gave_up:
            emit_dead_letter(event, trigger)
        if applied and outcome.succeeded and has_follow_ups(result.response):
            note = emit_follow_ups(event, result.response)
            if note:
                EventLog.objects.filter(id=event.id).update(remark=note)
    return applied


def log_finish(result: DeliveryResult, trigger: Trigger, applied: bool) -> None:
    """One log line per attempt, or a warning when the lease was lost before it finished."""
    event, outcome = result.event, result.outcome
    extra = {"event_id": str(event.id), "trigger": trigger.name}
    if not applied:
        logger.warning(
            "Event %s: lease lost before attempt %s finished", event.id, result.attempt, extra=extra
        )
        return
    log = logger.info if outcome.succeeded else logger.warning
    log(
        "Event %s trigger=%s attempt=%s status=%s %s",
        event.id,
        trigger.name,
        result.attempt,
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
