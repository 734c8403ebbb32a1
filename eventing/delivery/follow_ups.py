"""Follow-up events: the custom events a webhook's 2xx reply asks for, within rules and bounds.

A reply `{"event": {…}}` or `{"events": […]}` queues custom events on behalf of the receiver.
The receiver proved nothing about any user, so a follow-up is queued as an anonymous caller of
the queue API would be: its type's queue rule must be `allow` (its own, else `default`'s) and
its payload must satisfy the type's JSON Schema. `dlq_…` types are never queued this way (only
a trigger giving up emits them). Loops are bounded: a follow-up's chain depth (1 for a reply to
an ordinary event, its parent's + 1 below that) is carried in its `source`,
`follow-up:<parent id>:depth=<n>:root=<root id>`, and past `FOLLOW_UP_MAX_DEPTH` a reply
queues nothing; one reply queues at most `FOLLOW_UP_MAX_PER_REPLY` events; and the whole chain
of one root event records at most `FOLLOW_UP_MAX_TOTAL` event rows, counted in the root's
`FollowUpBudget` row (so retries and redeliveries of any event in the chain spend the same
budget). What was dropped or refused is said in the parent event's remark.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from rest_framework.exceptions import APIException

from eventing.conf import settings
from eventing.models import EventLog, FollowUpBudget
from eventing.recording.emit import emit
from eventing.recording.rules import (
    check_payload,
    check_queue_rule,
    queue_rule_for,
    refuse_reserved_type,
)
from eventing.webhooks.request import WebhookResponse
from triggers import types

logger = logging.getLogger(__name__)

# The root is absent from follow-ups recorded before the budget existed: their parent stands in.
SOURCE_RE = re.compile(
    r"follow-up:(?P<parent>[0-9a-fA-F-]{32,36}):depth=(?P<depth>[0-9]{1,4})"
    r"(?::root=(?P<root>[0-9a-fA-F-]{32,36}))?"
)
# Longest text kept from one refusal in the remark.
REASON_CHARS = 200


def depth_of(event: EventLog) -> int:
    """How many follow-up steps led to `event` (0 for an event queued any other way)."""
    match = SOURCE_RE.fullmatch(event.source or "")
    return int(match.group("depth")) if match else 0


def root_of(event: EventLog) -> str:
    """The id of the event that started `event`'s chain (its own id if it is not a follow-up)."""
    match = SOURCE_RE.fullmatch(event.source or "")
    if not match:
        return str(event.id)
    return match.group("root") or match.group("parent")


def follow_up_source(parent: EventLog) -> str:
    """The `source` of a follow-up of `parent`: names the parent, the chain depth and its root."""
    return f"follow-up:{parent.id}:depth={depth_of(parent) + 1}:root={root_of(parent)}"


class BudgetSpent(Exception):
    """The chain's root has no follow-up budget left for this follow-up."""


def budget_left(root: str) -> bool:
    """Whether the chain of `root` may still record a follow-up."""
    used = (
        FollowUpBudget.objects.using(settings.DATABASE)
        .filter(root_id=root)
        .values_list("used", flat=True)
        .first()
    )
    return (used or 0) < settings.FOLLOW_UP_MAX_TOTAL


def spend(root: str, rows: int) -> None:
    """Count `rows` follow-up events against the chain of `root`; BudgetSpent if it has not
    enough left (the caller's savepoint then undoes them)."""
    budgets = FollowUpBudget.objects.using(settings.DATABASE)
    budgets.bulk_create([FollowUpBudget(root_id=root)], ignore_conflicts=True)
    # A conditional UPDATE: concurrent deliveries of one chain take turns on the row's lock and
    # none can push the count past the limit.
    limit = settings.FOLLOW_UP_MAX_TOTAL
    spent = budgets.filter(root_id=root, used__lte=limit - rows).update(used=F("used") + rows)
    if not spent:
        raise BudgetSpent


def requested(response: WebhookResponse) -> list:
    """The items a reply asks to queue: `events` (a list) or `[event]`; [] if none or unreadable."""
    reply = response.json()  # None for anything that does not parse, however it fails
    if not isinstance(reply, dict):
        return []
    if "events" in reply:
        wanted = reply["events"]
        return wanted if isinstance(wanted, list) else []
    return [reply["event"]] if "event" in reply else []


def emit_follow_ups(event: EventLog, response: WebhookResponse) -> str:
    """Queue the follow-ups `event`'s 2xx reply asks for; a remark on what was not ("" if all)."""
    wanted = requested(response)
    if not wanted:
        return ""
    depth_limit = settings.FOLLOW_UP_MAX_DEPTH
    if depth_of(event) >= depth_limit:
        return (
            f"Follow-ups: {len(wanted)} not queued: chain depth {depth_limit} reached "
            "(EVENTING['FOLLOW_UP_MAX_DEPTH'])."
        )
    cap = settings.FOLLOW_UP_MAX_PER_REPLY
    notes = []
    if len(wanted) > cap:
        notes.append(
            f"{len(wanted) - cap} of {len(wanted)} dropped: at most {cap} per reply "
            "(EVENTING['FOLLOW_UP_MAX_PER_REPLY'])"
        )
    source = follow_up_source(event)
    root = root_of(event)
    rules: dict = {}
    for index, item in enumerate(wanted[:cap]):
        try:
            if not budget_left(root):
                raise BudgetSpent
            queue_one(item, source, rules, root)
        except BudgetSpent:
            notes.append(
                f"{len(wanted[:cap]) - index} not queued: the chain of event {root} has queued "
                f"its {settings.FOLLOW_UP_MAX_TOTAL} follow-up events "
                "(EVENTING['FOLLOW_UP_MAX_TOTAL'])"
            )
            break
        except (ValidationError, APIException) as exc:
            notes.append(f"[{index}] refused: {reason(exc)}")
        except Exception as exc:  # noqa: BLE001 - one bad follow-up must not undo the delivery
            logger.warning("Event %s: follow-up %s not queued", event.id, index, exc_info=True)
            notes.append(f"[{index}] not queued: {type(exc).__name__}: {str(exc)[:REASON_CHARS]}")
    return f"Follow-ups: {'; '.join(notes)}." if notes else ""


def queue_one(item: Any, source: str, rules: dict, root: str) -> None:
    """Check one requested follow-up as an anonymous queue call would be, then emit it."""
    if not isinstance(item, dict):
        raise ValidationError("not an object with `type` and `payload`")
    event_type = item.get("type")
    if not isinstance(event_type, str) or not types.is_custom_type(event_type):
        raise ValidationError(f"type {str(event_type)[:100]!r} is not a custom event type")
    refuse_reserved_type(event_type)
    payload = item.get("payload")
    rule_row = queue_rule_for(event_type, rules)
    try:
        check_queue_rule(AnonymousUser(), event_type, rule_row)
    except APIException as exc:
        raise ValidationError(
            f"{reason(exc)} (a follow-up is queued as an anonymous caller: only `allow` passes)"
        ) from None
    check_payload(rule_row, event_type, payload)
    with transaction.atomic(using=settings.DATABASE):
        # A savepoint: a refusal inside emit, or a spent budget, leaves the parent's
        # transaction usable and undoes this follow-up's rows.
        rows = emit(event_type, payload, delay_s=delay_of(item), source=source)
        spend(root, len(rows))


def delay_of(item: dict) -> float | None:
    """`delay` (milliseconds) as seconds; refused unless a finite, non-negative number."""
    delay_ms = item.get("delay")
    if delay_ms is None:
        return None
    if isinstance(delay_ms, bool) or not isinstance(delay_ms, (int, float)):
        raise ValidationError("delay: a number of milliseconds is required")
    try:
        delay_s = float(delay_ms) / 1000
    except OverflowError:  # an integer of hundreds of digits
        delay_s = math.inf
    if not math.isfinite(delay_s) or delay_s < 0:
        raise ValidationError("delay: must be a finite, non-negative number of milliseconds")
    limit = settings.MAX_SCHEDULE_AHEAD_S
    if delay_s > limit:
        raise ValidationError(f"delay: at most {limit} s ahead (EVENTING['MAX_SCHEDULE_AHEAD_S'])")
    return delay_s


def reason(exc: ValidationError | APIException) -> str:
    """One line from a Django or DRF error, fields named: `payload.qty: …`."""
    detail = exc.message_dict if hasattr(exc, "error_dict") else getattr(exc, "detail", None)
    if detail is None:
        detail = exc.messages
    if isinstance(detail, dict):
        text = "; ".join(
            f"{field}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
            for field, msgs in detail.items()
        )
    elif isinstance(detail, list):
        text = " ".join(map(str, detail))
    else:
        text = str(detail)
    return text[:REASON_CHARS]
