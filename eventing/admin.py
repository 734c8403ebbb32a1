"""The event timeline on a host project's own admin pages: `Order #42`'s change page lists every
event about that row, with redeliver and "send this row to a trigger" for users allowed to.

Opt-in per ModelAdmin (nothing is registered or added to any site here):

    from eventing.admin import EventTimelineMixin

    @admin.register(Order)
    class OrderAdmin(EventTimelineMixin, admin.ModelAdmin): ...

An event is about a row when its source is the row's model and its payload's `pk` is the row's
(DB events and MANUAL events carry both). The page reads the newest events in one query, with
the actor and the last attempt's response as subqueries, so its cost does not grow per event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Model, OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Substr
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, path, reverse
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from eventing.capture import backfill, model_data
from eventing.dispatch.operations import redeliver_events
from eventing.models import FINAL_STATUSES, EventLog, InvocationLog
from eventing.ops.search import PayloadFilter, filter_by_payload
from triggers.models import Trigger

# Events shown on one page; older ones are a link away, in Mission Control.
TIMELINE_LIMIT = 50
# Characters of the last response body shown.
BODY_EXCERPT = 200
# Where Mission Control's pages are, when the project mounts it (eventing never imports it).
MISSION_CONTROL = "mission_control"


def events_about(obj: Model) -> QuerySet[EventLog]:
    """Every event whose source is `obj`'s model and whose payload `pk` is `obj`'s."""
    events = EventLog.objects.filter(source=obj._meta.label)
    key = model_data.json_safe(obj.pk)
    return filter_by_payload(events, [PayloadFilter("pk", ("pk",), (key,))])


def timeline_events(obj: Model, limit: int = TIMELINE_LIMIT) -> list[EventLog]:
    """The newest `limit` events about `obj`, each with `actor`, `last_body` and `last_error`
    (of its last attempt) read in the same query; the payload itself is left unread."""
    last = InvocationLog.objects.filter(event=OuterRef("pk")).order_by("-invoked_at", "-pk")
    return list(
        events_about(obj)
        .defer("payload")
        .annotate(
            actor=KeyTextTransform("actor", "payload"),
            last_body=Subquery(
                last.annotate(excerpt=Substr("response_body", 1, BODY_EXCERPT)).values("excerpt")[
                    :1
                ]
            ),
            last_error=Subquery(last.values("error_msg")[:1]),
        )
        .order_by("-created_at", "-id")[:limit]
    )


def mission_control_url(name: str, *args: Any) -> str | None:
    """A Mission Control page's URL, or None where the project does not mount it."""
    try:
        return reverse(f"{MISSION_CONTROL}:{name}", args=args)
    except NoReverseMatch:
        return None


@dataclass
class Timeline:
    """What the timeline template shows for one row."""

    events: list[EventLog]
    more_url: str | None
    can_redeliver: bool
    send_triggers: list[Trigger]
    redeliver_url: str
    send_url: str
    limit: int


class EventTimelineMixin:
    """ModelAdmin mixin: the change page shows the row's events (type, trigger, actor, status,
    attempts, last response), redeliver for users with `eventing.redeliver_eventlog`, "send
    this row to a trigger" for users with `triggers.change_trigger`, links to Mission Control.

    The timeline appears to users who may view event logs (`eventing.view_eventlog`). A
    ModelAdmin with a change form template of its own includes
    `eventing/admin/timeline.html` in it instead.
    """

    change_form_template = "eventing/admin/change_form_timeline.html"
    eventing_timeline_limit = TIMELINE_LIMIT

    def get_urls(self) -> list:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/eventing/redeliver/",
                wrap(self.eventing_redeliver_view),
                name=f"{prefix}_eventing_redeliver",
            ),
            path(
                "<path:object_id>/eventing/send/",
                wrap(self.eventing_send_view),
                name=f"{prefix}_eventing_send",
            ),
            *super().get_urls(),
        ]

    def render_change_form(
        self, request: HttpRequest, context: dict, add=False, change=False, form_url="", obj=None
    ) -> HttpResponse:
        if obj is not None and obj.pk is not None and may_see_events(request):
            context["eventing_timeline"] = self.eventing_timeline(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def eventing_timeline(self, request: HttpRequest, obj: Model) -> Timeline:
        """The timeline of `obj` for this request's user."""
        object_id = quote(obj.pk)
        more = mission_control_url("eventing_eventlog_changelist")
        if more is not None:
            more += "?" + urlencode({"payload__pk": model_data.json_safe(obj.pk)})
        sends = (
            list(backfill.db_triggers_of(type(obj)).order_by("name")) if may_send(request) else []
        )
        return Timeline(
            events=timeline_events(obj, self.eventing_timeline_limit),
            more_url=more,
            can_redeliver=may_redeliver(request),
            send_triggers=sends,
            redeliver_url=reverse(self.eventing_url("eventing_redeliver"), args=[object_id]),
            send_url=reverse(self.eventing_url("eventing_send"), args=[object_id]),
            limit=self.eventing_timeline_limit,
        )

    def eventing_url(self, action: str) -> str:
        """The URL name of one of this admin's pages (`change`, `eventing_send`, …)."""
        return f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_{action}"

    def eventing_row(self, request: HttpRequest, object_id: str) -> Model:
        """The row of a timeline action, for a user who may see it; else 404 / 403."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No such row.")
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def eventing_back(self, obj: Model) -> HttpResponseRedirect:
        """Back to the row's change page, at its timeline."""
        url = reverse(self.eventing_url("change"), args=[quote(obj.pk)])
        return HttpResponseRedirect(url + "#eventing-timeline")

    @method_decorator(require_POST)
    def eventing_redeliver_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Stage one finished event about the row again (fresh retry budget)."""
        obj = self.eventing_row(request, object_id)
        if not may_redeliver(request):
            raise PermissionDenied
        try:
            event_id = uuid.UUID(request.POST.get("event", ""))
        except ValueError:
            raise Http404("No such event.") from None
        event = events_about(obj).filter(pk=event_id).only("id", "status").first()
        if event is None:
            raise Http404("No such event about this row.")
        if event.status not in FINAL_STATUSES:
            self.message_user(
                request,
                f"Event {event.id} is {event.status}: it is still on its way.",
                messages.WARNING,
            )
        elif redeliver_events([event.id]):
            self.message_user(request, f"Event {event.id} will be delivered again.")
        return self.eventing_back(obj)

    @method_decorator(require_POST)
    def eventing_send_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Send the row to one of its model's DB triggers as a MANUAL event."""
        obj = self.eventing_row(request, object_id)
        if not may_send(request):
            raise PermissionDenied
        raw = request.POST.get("trigger", "")
        triggers = backfill.db_triggers_of(type(obj))
        trigger = triggers.filter(pk=int(raw)).first() if raw.isdigit() else None
        if trigger is None:
            self.message_user(request, "Choose a DB trigger of this model.", messages.ERROR)
            return self.eventing_back(obj)
        rows = type(obj)._default_manager.filter(pk=obj.pk).order_by("pk")
        backfill.send_batch(trigger, rows, backfill_id=backfill.new_backfill_id(), batch_size=1)
        self.message_user(request, f"Sent {obj} to {trigger.name} as a MANUAL event.")
        return self.eventing_back(obj)


def may_see_events(request: HttpRequest) -> bool:
    """The timeline shows event payload facts: for users who may view event logs."""
    return request.user.has_perm("eventing.view_eventlog")


def may_redeliver(request: HttpRequest) -> bool:
    """Redelivery calls a webhook again: Mission Control's redeliver permission."""
    return request.user.has_perm("eventing.redeliver_eventlog")


def may_send(request: HttpRequest) -> bool:
    """Sending a row to a trigger is a backfill of one row: for users who may change triggers."""
    return request.user.has_perm("triggers.change_trigger")
