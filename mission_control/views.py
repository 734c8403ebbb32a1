"""Pages of Mission Control beyond the model admins: queue an event, health as JSON."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from eventing.conf import settings
from eventing.delivery.deliver import deliver_event
from eventing.ops import health as health_checks
from eventing.recording.emit import emit

from .forms import QueueEventForm

# Synchronous events are recorded due this far ahead so that only this request delivers them
# (the broker's message finds them already done); if the request dies, they still go out.
SYNC_HOLD_S = 60


def queue_event(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Queue a custom event from the form's cleaned data; with `synchronous`, deliver it now.

    Returns one dict per event recorded: id, trigger, status and, when synchronous, the
    webhook's status code and reply.
    """
    synchronous = data.get("synchronous")
    delay_s = data.get("delay_s")
    deliver_at = data.get("deliver_at")
    if deliver_at is not None and timezone.is_naive(deliver_at):
        deliver_at = timezone.make_aware(deliver_at)
    if synchronous and delay_s is None and deliver_at is None:
        delay_s = SYNC_HOLD_S
    with transaction.atomic(using=settings.DATABASE):
        events = emit(
            data["type"],
            data["payload"],
            delay_s=delay_s,
            deliver_at=deliver_at,
            source="mission-control",
        )
    results = []
    for event in events:
        row: dict[str, Any] = {
            "id": str(event.id),
            "trigger": event.trigger_name,
            "status": event.status,
        }
        if synchronous:
            result = deliver_event(event.id, force=True)
            event.refresh_from_db()
            row["status"] = event.status
            if result.skipped:
                row["error"] = result.skipped
            elif result.response is not None:
                row["status_code"] = result.response.status_code
                row["reply"] = result.response.body
                row["error"] = result.response.error
        results.append(row)
    return results


def queue_event_view(request: HttpRequest) -> HttpResponse:
    """Pick a custom type, write a JSON payload, choose when; see the ids or the reply."""
    from .sites import site

    if not request.user.has_perm("eventing.queue_event"):
        raise PermissionDenied
    form = QueueEventForm(request.POST or None)
    results = None
    if request.method == "POST" and form.is_valid():
        try:
            results = queue_event(form.cleaned_data)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
    context = {
        **site.each_context(request),
        "title": "Queue an event",
        "form": form,
        "results": results,
        "synchronous": bool(form.is_bound and form.cleaned_data.get("synchronous"))
        if results is not None
        else False,
    }
    return TemplateResponse(request, "mission_control/queue_event.html", context)


def dashboard_health_view(request: HttpRequest) -> JsonResponse:
    """The dashboard's health as JSON: /healthz's report (eventing.ops.health), for monitoring."""
    if not request.user.has_perm("eventing.view_eventlog"):
        raise PermissionDenied
    return JsonResponse(health_checks.health())
