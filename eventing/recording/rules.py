"""Who may queue what: the queue rule and JSON Schema of each custom event type.

One place for the API, Mission Control's queue page and follow-up events alike.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions

from eventing.recording import payload_rules
from triggers.models import EventType

QUEUE_PERMISSION = "eventing.queue_event"
DEFAULT_RULE_TYPE = "default"
# Types only Eventing emits (dead letters): nobody queues them from outside.
DEAD_LETTER_PREFIX = "dlq_"


def django_validation_detail(exc: DjangoValidationError) -> Any:
    """A Django ValidationError as DRF detail: {field: [messages]} or [messages]."""
    if hasattr(exc, "error_dict"):
        return {
            ("non_field_errors" if field == "__all__" else field): messages
            for field, messages in exc.message_dict.items()
        }
    return {"non_field_errors": exc.messages}


def queue_rule_for(event_type: str, cache: dict | None = None) -> EventType | None:
    """The EventType row whose rule governs `event_type`: its own, else `default`, else None."""
    cache = {} if cache is None else cache
    if event_type not in cache:
        rows = {
            row.name: row
            for row in EventType.objects.filter(name__in=[event_type, DEFAULT_RULE_TYPE])
        }
        cache[event_type] = rows.get(event_type) or rows.get(DEFAULT_RULE_TYPE)
    return cache[event_type]


def refuse_unauthenticated(user, message: str) -> NoReturn:
    """401: why the credentials sent failed (eventing.api.auth.UnverifiedCaller), else `message`."""
    failure = getattr(user, "credentials_error", None)
    if failure is not None:
        raise exceptions.AuthenticationFailed(f"{failure.detail} ({message})")
    raise exceptions.NotAuthenticated(message)


def check_queue_rule(user, event_type: str, rule_row: EventType | None) -> None:
    """Raise 401/403 naming the rule when `user` may not queue `event_type`."""
    if rule_row is None:
        raise exceptions.PermissionDenied(
            f"No queue rule for type {event_type!r} and no 'default' event type: queueing is "
            "refused."
        )
    rule = rule_row.queue_rule
    via = "" if rule_row.name == event_type else " (the default rule)"
    authenticated = bool(user and user.is_authenticated)
    if rule == EventType.QueueRule.ALLOW:
        return  # never looks at the credentials
    if rule == EventType.QueueRule.AUTHENTICATED:
        if not authenticated:
            refuse_unauthenticated(
                user, f"Type {event_type!r} may be queued by authenticated callers only{via}."
            )
        return
    if rule == EventType.QueueRule.PERMISSION:
        if not authenticated:
            refuse_unauthenticated(
                user, f"Type {event_type!r} needs the permission {QUEUE_PERMISSION}{via}."
            )
        if not user.has_perm(QUEUE_PERMISSION):
            raise exceptions.PermissionDenied(
                f"Type {event_type!r} needs the permission {QUEUE_PERMISSION}{via}."
            )
        return
    raise exceptions.PermissionDenied(
        f"Type {event_type!r} may not be queued over HTTP (queue rule {rule!r}{via})."
    )


def check_payload(rule_row: EventType | None, event_type: str, payload: Any) -> None:
    """Refuse a payload that is not storable JSON or breaks its type's own JSON Schema (400)."""
    schema = rule_row.schema if rule_row is not None and rule_row.name == event_type else None
    try:
        payload_rules.check_payload(payload)
        payload_rules.check_against_schema(event_type, schema, payload)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(django_validation_detail(exc)) from None


def refuse_reserved_type(event_type: str) -> None:
    """400 for a type only Eventing itself emits (`dlq_…`, in any case)."""
    if event_type.lower().startswith(DEAD_LETTER_PREFIX):
        raise exceptions.ValidationError(
            {"type": f"{event_type!r}: dead-letter types are emitted only by Eventing."}
        )
