"""Who may do what: queue rules per custom type, model permissions for the rest."""

from __future__ import annotations

from typing import NoReturn

from rest_framework import exceptions, permissions
from rest_framework.request import Request

from triggers.models import EventType

QUEUE_PERMISSION = "eventing.queue_event"
DEFAULT_RULE_TYPE = "default"


class ModelPermissions(permissions.DjangoModelPermissions):
    """The model permission of the method or action, exactly as Mission Control applies them.

    Staff status grants nothing by itself (a read-only operator is staff too); superusers hold
    every permission. Reading needs `view_<model>`. A view may name the permissions of its extra
    actions in `action_permissions` (e.g. {"cancel": ["eventing.cancel_eventlog"]}).
    """

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Request, view) -> bool:
        """The permissions of the action, else those of the method."""
        user = request.user
        if not user or not user.is_authenticated:
            return False
        action_perms = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if action_perms is not None:
            return user.has_perms(action_perms)
        return super().has_permission(request, view)


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
