"""Who may do what: queue rules per custom type, model permissions for the rest."""

from __future__ import annotations

from rest_framework import permissions
from rest_framework.request import Request

from eventing.recording.rules import (  # noqa: F401 - the API's queue rules are these
    QUEUE_PERMISSION,
    check_queue_rule,
    queue_rule_for,
)


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


class QueueEveryTypePermission(permissions.BasePermission):
    """Holds `eventing.queue_event`, which every queue rule but `deny` accepts (the admin queue).

    A superuser holds it; staff status alone does not. `deny` types stay refused per event.
    """

    message = f"The admin queue needs the permission {QUEUE_PERMISSION}."

    def has_permission(self, request: Request, view) -> bool:
        """Authenticated and holding the queue permission."""
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(QUEUE_PERMISSION))
