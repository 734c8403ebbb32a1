"""Queueing custom events over HTTP: rule, schema, one transaction; replies of synchronous mode."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db import IntegrityError
from rest_framework import exceptions
from rest_framework.exceptions import ErrorDetail

from eventing.api.errors import Conflict
from eventing.delivery.deliver import DeliveryResult
from eventing.models import EventLog, InvocationLog
from eventing.recording.emit import (
    BatchItem,
    EventRequest,
    IdempotencyConflict,
    emit_batch,
)
from eventing.recording.rules import (
    check_payload,
    check_queue_rule,
    queue_rule_for,
    refuse_reserved_type,
)
from triggers.models import EventType

logger = logging.getLogger(__name__)


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


def reply_of(result: DeliveryResult) -> Any:
    """The webhook's reply: parsed JSON, else its text, else None."""
    if result.response is None:
        return None
    parsed = result.response.json()
    if parsed is not None:
        return parsed
    return result.response.body or None


def space_cloud_result(reply: Any) -> Any:
    """What a Space Cloud client gets as `result`: the reply's `response` member (Space Cloud
    receivers answer `{"response": X}`), else the whole reply (a plain receiver's answer)."""
    if isinstance(reply, dict) and "response" in reply:
        return reply["response"]
    return reply


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
