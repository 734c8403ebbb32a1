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
from triggers.validation import INTERNAL_APPS, resolve_model

# Rows an admin action hands over by primary key; beyond it, filter on the backfill page.
MAX_SELECTED = 1000
# The action's name on a change list.
ACTION_NAME = "eventing_send_to_db_trigger"


def may_backfill(request: HttpRequest) -> bool:
    """Backfilling sends events to webhooks: for users who may change triggers."""
    return request.user.has_perm("triggers.change_trigger")


def may_view_rows(request: HttpRequest, trigger: Trigger) -> bool:
    """Counting and sending rows reads them: the user also needs the model's view permission."""
    model = resolve_model(trigger.source)
    if model is None:
        return True  # rows_for() refuses it, naming the trigger
    opts = model._meta
    user = request.user
    return user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or user.has_perm(
        f"{opts.app_label}.change_{opts.model_name}"
    )


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


def request_data(request: HttpRequest) -> dict[str, Any]:
    """The dialog request's JSON object; ValidationError when it is not one."""
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):
        raise ValidationError({"body": "Send a JSON object."}) from None
    if not isinstance(data, dict):
        raise ValidationError({"body": "Send a JSON object."})
    return data


def selection(request: HttpRequest, data: dict[str, Any]) -> tuple[Trigger, Any]:
    """The trigger and rows a dialog request names; ValidationError says what is wrong,
    PermissionDenied when the user may not view the trigger's model."""
    name, filters = data.get("trigger"), data.get("filters")
    if not isinstance(name, str):
        raise ValidationError({"trigger": "the name of a DB trigger (text)."})
    if filters is not None and not isinstance(filters, str):
        raise ValidationError({"filters": "field=value lines (text)."})
    trigger = Trigger.objects.filter(name=name).first()
    if trigger is None:
        raise ValidationError({"trigger": "Choose a DB trigger."})
    if not may_view_rows(request, trigger):
        raise PermissionDenied(f"Sending {trigger.source} rows needs the view permission of it.")
    lines = [line.strip() for line in (filters or "").splitlines()]
    return trigger, backfill.rows_for(trigger, backfill.parse_filters(filter(None, lines)))


def answer(step) -> JsonResponse:
    """Run one step of the dialog; a refused selection answers 400 naming the field."""
    try:
        return JsonResponse(step())
    except PermissionDenied as exc:
        return JsonResponse({"error": str(exc) or "Permission denied."}, status=403)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            text = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        else:
            text = " ".join(exc.messages)
        return JsonResponse({"error": text}, status=400)


def batch_options(data: dict[str, Any]) -> tuple[str, Any, int]:
    """backfill_id, after (a primary key: text, a number or null) and batch_size of a batch
    request; ValidationError naming the field that is malformed."""
    backfill_id, after, size = (
        data.get("backfill_id"),
        data.get("after"),
        data.get("batch_size"),
    )
    if backfill_id is not None and not isinstance(backfill_id, str):
        raise ValidationError({"backfill_id": "text, or null for a new backfill."})
    if isinstance(after, (dict, list, bool)):
        raise ValidationError({"after": "the last primary key sent (text or a number), or null"})
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
        raise ValidationError({"batch_size": f"a whole number, 1 to {backfill.MAX_BATCH_SIZE}"})
    return backfill_id or backfill.new_backfill_id(), after, size or backfill.DEFAULT_BATCH_SIZE


@require_POST
def count_view(request: HttpRequest) -> JsonResponse:
    """How many rows the selection holds (shown before anything is sent)."""
    if not may_backfill(request):
        raise PermissionDenied

    def step() -> dict[str, Any]:
        trigger, rows = selection(request, request_data(request))
        return {"trigger": trigger.name, "count": rows.count()}

    return answer(step)


@require_POST
def batch_view(request: HttpRequest) -> JsonResponse:
    """Send the next batch after `after` (one committed transaction); where it got to."""
    if not may_backfill(request):
        raise PermissionDenied

    def step() -> dict[str, Any]:
        data = request_data(request)
        trigger, rows = selection(request, data)
        backfill_id, after, batch_size = batch_options(data)
        try:
            done = backfill.send_batch(
                trigger, rows, backfill_id=backfill_id, after=after, batch_size=batch_size
            )
        except (ValueError, TypeError):
            raise ValidationError({"after": "not a primary key of this model"}) from None
        return {
            "sent": done.sent,
            "skipped": done.skipped,
            "last_pk": done.last_pk,
            "done": done.done,
        }

    return answer(step)
