"""Mission Control's backfill dialog: count the rows, then send them to a DB trigger as MANUAL
events batch by batch from the browser (each batch one short request), showing progress; and
the admin action that opens it from a model's change list (opt-in: SendToDBTriggerMixin)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from eventing.capture import backfill
from triggers.models import Trigger
from triggers.validation import INTERNAL_APPS

# Rows an admin action hands over by primary key; beyond it, filter on the backfill page.
MAX_SELECTED = 1000
# The action's name on a change list.
ACTION_NAME = "eventing_send_to_db_trigger"


def may_backfill(request: HttpRequest) -> bool:
    """Backfilling sends events to webhooks: for users who may change triggers."""
    return request.user.has_perm("triggers.change_trigger")


def dialog_link(queryset) -> str:
    """The backfill page for these rows of a model (by primary key)."""
    pks = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True)[:MAX_SELECTED])
    query = {"model": queryset.model._meta.label, "filter": f"pk__in={pks}"}
    return reverse("mission_control:backfill") + "?" + urlencode(query)


@admin.action(description="Send selected rows to a DB trigger (MANUAL events)")
def send_to_db_trigger(modeladmin, request: HttpRequest, queryset) -> HttpResponse | None:
    """Open the backfill dialog for the selected rows (any model with a DB trigger)."""
    model = queryset.model
    if model._meta.app_label in INTERNAL_APPS or not backfill.db_triggers_of(model).exists():
        modeladmin.message_user(
            request, f"{model._meta.label} has no DB trigger to send rows to.", messages.ERROR
        )
        return None
    if queryset.count() > MAX_SELECTED:
        modeladmin.message_user(
            request,
            f"Select at most {MAX_SELECTED} rows, or filter rows on the backfill page.",
            messages.ERROR,
        )
        return None
    return HttpResponseRedirect(dialog_link(queryset))


class SendToDBTriggerMixin:
    """ModelAdmin mixin: "Send selected rows to a DB trigger" on this admin's change list.

    Opt-in, per admin of the project's own site (Mission Control adds nothing to it):
    `class OrderAdmin(SendToDBTriggerMixin, admin.ModelAdmin)`.
    """

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # Django offers no actions in popups or when an admin turns them off (actions = None).
        if self.actions is not None and IS_POPUP_VAR not in request.GET and may_backfill(request):
            actions[ACTION_NAME] = (
                send_to_db_trigger,
                ACTION_NAME,
                send_to_db_trigger.short_description,
            )
        return actions


def backfill_view(request: HttpRequest) -> HttpResponse:
    """The dialog: trigger, filter lines, batch size; count first, then send with progress."""
    from .sites import site

    if not may_backfill(request):
        raise PermissionDenied
    triggers = Trigger.objects.filter(type__in=backfill.types.DB_TYPES).order_by("name")
    model = request.GET.get("model")
    if model:
        triggers = triggers.filter(source=model)
    context = {
        **site.each_context(request),
        "title": "Backfill: send rows to a DB trigger",
        "triggers": triggers,
        "chosen": request.GET.get("trigger", ""),
        "filters": "\n".join(request.GET.getlist("filter")),
        "model": model or "",
        "backfill_id": backfill.new_backfill_id(),
        "batch_size": backfill.DEFAULT_BATCH_SIZE,
        "max_batch_size": backfill.MAX_BATCH_SIZE,
    }
    return TemplateResponse(request, "mission_control/backfill.html", context)


def selection(data: dict[str, Any]) -> tuple[Trigger, Any]:
    """The trigger and rows a dialog request names; ValidationError says what is wrong."""
    trigger = Trigger.objects.filter(name=data.get("trigger") or "").first()
    if trigger is None:
        raise ValidationError({"trigger": "Choose a DB trigger."})
    lines = [line.strip() for line in str(data.get("filters") or "").splitlines()]
    return trigger, backfill.rows_for(trigger, backfill.parse_filters(filter(None, lines)))


def answer(step) -> JsonResponse:
    """Run one step of the dialog; a refused selection answers 400 with the reason."""
    try:
        return JsonResponse(step())
    except (ValidationError, ValueError) as exc:
        text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        return JsonResponse({"error": text}, status=400)


@require_POST
def count_view(request: HttpRequest) -> JsonResponse:
    """How many rows the selection holds (shown before anything is sent)."""
    if not may_backfill(request):
        raise PermissionDenied

    def step() -> dict[str, Any]:
        trigger, rows = selection(json.loads(request.body or b"{}"))
        return {"trigger": trigger.name, "count": rows.count()}

    return answer(step)


@require_POST
def batch_view(request: HttpRequest) -> JsonResponse:
    """Send the next batch after `after` (one committed transaction); where it got to."""
    if not may_backfill(request):
        raise PermissionDenied

    def step() -> dict[str, Any]:
        data = json.loads(request.body or b"{}")
        trigger, rows = selection(data)
        done = backfill.send_batch(
            trigger,
            rows,
            backfill_id=str(data.get("backfill_id") or backfill.new_backfill_id()),
            after=data.get("after"),
            batch_size=int(data.get("batch_size") or backfill.DEFAULT_BATCH_SIZE),
        )
        return {
            "sent": done.sent,
            "skipped": done.skipped,
            "last_pk": done.last_pk,
            "done": done.done,
        }

    return answer(step)
