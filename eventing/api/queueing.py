"""Queueing custom events over HTTP: rule, schema, one transaction, and delivery now if asked."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connections, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.exceptions import ErrorDetail

from eventing.api.errors import Conflict, django_validation_detail
from eventing.conf import settings
from eventing.delivery.deliver import DeliveryResult, deliver_event
from eventing.dispatch.publish import publish
from eventing.models import EventLog, EventStatus, InvocationLog
from eventing.recording import payload_rules
from eventing.recording.emit import (
    BatchItem,
    EventRequest,
    IdempotencyConflict,
    build_rows,
    emit_batch,
)
from eventing.recording.rules import (
    check_payload,
    check_queue_rule,
    queue_rule_for,
    refuse_reserved_type,
)
from triggers.models import EventType, Trigger
from triggers.registry import TriggerSpec

logger = logging.getLogger(__name__)

# Synchronous deliveries to several triggers run side by side, so the wait is the slowest one.
MAX_SYNC_THREADS = 8


def prefixed(exc: exceptions.APIException, index: int | None) -> exceptions.APIException:
    """The same error, naming the batch position `[index]` when there is one."""
    if index is None:
        return exc
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"": exc.detail}
        return exceptions.ValidationError(
            {f"[{index}].{key}" if key else f"[{index}]": value for key, value in detail.items()}
        )
    if isinstance(exc.detail, str):
        exc.detail = ErrorDetail(f"[{index}]: {exc.detail}", code=exc.detail.code)
    return exc


def authorize(user, events: list[dict[str, Any]], *, batch: bool) -> list[EventRequest]:
    """Check every event's queue rule and schema; the requests to record, in order."""
    rules: dict[str, EventType | None] = {}
    requests = []
    for index, event in enumerate(events):
        where = index if batch else None
        rule_row = queue_rule_for(event["type"], rules)
        try:
            refuse_reserved_type(event["type"])
            check_queue_rule(user, event["type"], rule_row)
            check_payload(rule_row, event["type"], event["payload"])
        except exceptions.APIException as exc:
            raise prefixed(exc, where) from None
        requests.append(
            EventRequest(
                type=event["type"],
                payload=event["payload"],
                due=event["due"],
                source=event.get("source") or "",
                idempotency_key=event.get("idempotency_key") or None,
            )
        )
    return requests


def record(requests: list[EventRequest], *, publish_rows: bool = True) -> list[BatchItem]:
    """Record the events in one transaction; 409 for a reused key with another payload."""
    try:
        return emit_batch(requests, publish=publish_rows)
    except IdempotencyConflict as exc:
        where = f"[{exc.index}].idempotency_key" if len(requests) > 1 else "idempotency_key"
        raise Conflict(
            f"{where}: key {exc.key!r} was already used for this type with a different payload."
        ) from None
    except IntegrityError:
        raise Conflict(
            "A concurrent request used the same idempotency key; retry to get its events."
        ) from None


def deliver_now(rows: list[EventLog]) -> list[DeliveryResult]:
    """Deliver these rows at once (side by side), each bounded by its trigger's timeout."""
    ids = [row.id for row in rows]
    if len(ids) <= 1:
        return [deliver_and_reschedule(event_id) for event_id in ids]
    with ThreadPoolExecutor(max_workers=min(len(ids), MAX_SYNC_THREADS)) as pool:
        return list(pool.map(deliver_in_thread, ids))


def deliver_in_thread(event_id) -> DeliveryResult:
    """A delivery on a pool thread, which must close its own database connections."""
    try:
        return deliver_and_reschedule(event_id)
    finally:
        connections.close_all()


def deliver_and_reschedule(event_id) -> DeliveryResult:
    """One forced attempt; a failed one is retried later through the broker like any other."""
    result = deliver_event(event_id, force=True)
    if result.retry_in_s is not None:
        row = EventLog.objects.filter(id=event_id, status=EventStatus.STAGED).first()
        if row is not None and row.enqueued_at is not None:
            publish(row.id, row.deliver_at)
    return result


def reply_of(result: DeliveryResult) -> Any:
    """The webhook's reply: parsed JSON, else its text, else None."""
    if result.response is None:
        return None
    parsed = result.response.json()
    if parsed is not None:
        return parsed
    return result.response.body or None


def earlier_reply(rows: list[EventLog]) -> Any:
    """The reply of the first accepted delivery among `rows` (by trigger name), else None."""
    invocation = (
        InvocationLog.objects.filter(event__in=[row.id for row in rows], succeeded=True)
        .order_by("event__trigger_name", "-attempt")
        .first()
    )
    if invocation is None or not invocation.response_body:
        return None
    try:
        return json.loads(invocation.response_body)
    except (ValueError, RecursionError):  # RecursionError: a reply nested thousands deep
        return invocation.response_body


def describe_failure(row: EventLog, result: DeliveryResult) -> str:
    """`trigger: why` for one failed synchronous delivery."""
    if result.skipped:
        return f"{row.trigger_name}: not delivered ({result.skipped})"
    remark = result.outcome.remark if result.outcome else "no outcome"
    return f"{row.trigger_name}: {remark}"


def record_test_event(trigger: Trigger, payload: Any) -> EventLog:
    """An event for this one trigger (filters aside), recorded but not sent to the broker."""
    try:
        payload_rules.check_payload(payload)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(django_validation_detail(exc)) from None
    spec = TriggerSpec(
        id=trigger.pk,
        name=trigger.name,
        type=trigger.type,
        source=trigger.source,
        filter={},
        watch_fields=(),
        payload_fields=(),
        path_pattern="",
        delay_s=0.0,
    )
    rows = build_rows(
        trigger.type,
        [(spec, payload)],
        source="test",
        due=timezone.now(),
        idempotency_key=None,
        status=EventStatus.STAGED,
        now=timezone.now(),
    )
    with transaction.atomic(using=settings.DATABASE):
        EventLog.objects.using(settings.DATABASE).bulk_create(rows)
    return rows[0]
