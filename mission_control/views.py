"""Pages of Mission Control beyond the model admins: queue an event, health as JSON."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from eventing.delivery import synchronous as synchronous_delivery
from eventing.models import EventLog
from eventing.ops import health as health_checks
from eventing.recording.emit import EventRequest, emit_batch, resolve_due

from .forms import QueueEventForm


def queue_event(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Queue a custom event from the form's cleaned data; with `synchronous`, deliver it now.

    Returns one dict per event recorded: id, trigger, status and, when synchronous, the
    webhook's status code and reply, and why it did not deliver (`error`, empty if it did).
    """
    synchronous = bool(data.get("synchronous"))
    deliver_at = data.get("deliver_at")
    if deliver_at is not None and timezone.is_naive(deliver_at):
        deliver_at = timezone.make_aware(deliver_at)
    request = EventRequest(
        type=data["type"],
        payload=data["payload"],
        due=resolve_due(deliver_at=deliver_at, delay_s=data.get("delay_s")),
        source="mission-control",
    )
    # Synchronous rows get no broker message: delivered here, as the API's isSynchronous does.
    [item] = emit_batch([request], publish=not synchronous)
    events = item.rows
    if not synchronous:
        return [row_of(event, event.status) for event in events]
    results = synchronous_delivery.deliver_now(events)
    statuses = dict(
        EventLog.objects.filter(id__in=[event.id for event in events]).values_list("id", "status")
    )
    rows = []
    for event, result in zip(events, results, strict=True):
        row = row_of(event, statuses.get(event.id, event.status))
        if result.response is not None:
            row["status_code"] = result.response.status_code
            row["reply"] = result.response.body
        row["error"] = synchronous_delivery.why_not_delivered(result)
        rows.append(row)
    return rows


def row_of(event: EventLog, status: str) -> dict[str, Any]:
    """What the queue page shows of one recorded event."""
    return {"id": str(event.id), "trigger": event.trigger_name, "status": status}


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
