"""Event log admin: a read-only change list that stays fast on millions of rows, and detail
pages with every invocation."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from django.contrib import admin, messages
from django.contrib.admin import ShowFacets
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import ngettext

from eventing.dispatch import operations
from eventing.models import EventLog, EventStatus
from eventing.ops.search import (
    filter_by_payload,
    is_payload_parameter,
    parse_payload_filters,
    query_pairs,
)
from eventing.store.ordering import head_of_key
from eventing.webhooks.request import REDACTED, SENSITIVE_HEADER_RE
from triggers import types
from triggers.models import EventType, Trigger

from .. import actions
from ..counting import EstimatedCountPaginator
from ..display import breakable, display_time
from ..forms import RedeliverFailedForm, ReplayForm
from ..keyset import KeysetChangeList, keyset_problems
from ..sites import site
from .params import ByTriggerFilter, CheckedFilter, CheckedParamsMixin, RecentFilter
from .readonly import ReadOnlyAdminMixin


class TypeFilter(CheckedFilter):
    """Event type; choices come from the small trigger and type tables, never event_logs."""

    title = "type"
    parameter_name = "type"
    value_pattern = types.NAME_RE
    expected = "an event type name"

    def lookups(self, request, model_admin):
        names = set(types.BUILTIN_TYPES)
        names.update(Trigger.objects.values_list("type", flat=True).distinct())
        names.update(EventType.objects.exclude(name="default").values_list("name", flat=True))
        return [(name, name) for name in sorted(names)]

    def queryset(self, request, queryset):
        return queryset.filter(type=self.value()) if self.value() else queryset


class TriggerFilter(ByTriggerFilter):
    """Trigger, by id (index: trigger, status, created_at)."""


class CreatedFilter(RecentFilter):
    """Recent windows of created_at (indexed); a date range needs no full scan."""

    title = "created"
    parameter_name = "created"
    field = "created_at"
    WINDOWS = {**RecentFilter.WINDOWS, "30d": ("Last 30 days", dt.timedelta(days=30))}
    OLDER = {"older30d": ("Older than 30 days", dt.timedelta(days=30))}


def delivery_numbers(attempts: list[int]) -> list[int]:
    """The delivery each invocation belongs to, given their attempt numbers in call order.

    Redelivery restarts the attempt count, so an attempt number that does not grow starts the
    next delivery: attempts 1, 2, 1 are deliveries 1, 1, 2.
    """
    numbers, delivery, previous = [], 0, 0
    for attempt in attempts:
        if delivery == 0 or attempt <= previous:
            delivery += 1
        numbers.append(delivery)
        previous = attempt
    return numbers


def redact_headers(headers: dict | None) -> dict:
    """Headers as shown: credentials replaced, whatever was stored."""
    return {
        name: REDACTED if SENSITIVE_HEADER_RE.search(name) else value
        for name, value in (headers or {}).items()
    }


def pretty_json(value) -> str:
    """Indented JSON of a value, or of a JSON string; other text unchanged."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    except RecursionError:
        # Rows stored before the API applied the nesting limit; the C encoder goes deeper.
        try:
            return json.dumps(value, ensure_ascii=False)
        except RecursionError:
            return "(nested too deeply to show)"


# The detail page names the time an event finished after how it finished; other states have none.
FINISHED_FIELD = "finished"
FINISHED_FIELDS = {
    EventStatus.PROCESSED: "processed",
    EventStatus.FAILED: "failed_at",
    EventStatus.CANCELLED: "cancelled_at",
}


class RecentFirstChangeList(KeysetChangeList):
    """The change list newest first, paged by key (mission_control.keyset); sorted by a user,
    ordered by created_at alone, so PostgreSQL reads it off an index.

    Django appends "-pk" to make ordering total; ORDER BY created_at DESC, id DESC matches no
    index and sorts the whole table (a second on a million rows). Rows with equal created_at
    (one emit's batch) may swap between pages; nothing is lost.
    """

    def _get_deterministic_ordering(self, ordering):
        return ordering


class PayloadSearchChangeList(RecentFirstChangeList):
    """The event change list, also filtered by `payload__…` parameters (eventing.ops.search)."""

    def get_filters_params(self, params=None):
        """Payload filters are not field lookups: get_queryset applies them (bounded)."""
        lookups = super().get_filters_params(params)
        return {k: v for k, v in lookups.items() if not is_payload_parameter(k)}

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        # Bounds were checked by CheckedParamsMixin before the change list was built.
        return filter_by_payload(queryset, parse_payload_filters(query_pairs(request.GET)))


@admin.register(EventLog, site=site)
class EventLogAdmin(ReadOnlyAdminMixin, CheckedParamsMixin, admin.ModelAdmin):
    """Events and their deliveries. Rows are read-only; actions go through the pipeline."""

    change_list_template = "mission_control/eventlog/change_list.html"
    change_form_template = "mission_control/eventlog/change_form.html"
    list_display = (
        "short_id",
        "type_name",
        "trigger_column",
        "status_badge",
        "attempts",
        "created",
        "due",
        "processed",
        "last_status_code",
    )
    list_display_links = ("short_id",)
    list_filter = ("status", TypeFilter, TriggerFilter, CreatedFilter)
    search_fields = ("id", "batch_id", "idempotency_key")  # see get_search_results
    search_help_text = (
        "An event id, a batch id or an idempotency key (exact). Payload values: add "
        "payload__customer_id=42 or payload__new__status=paid to the address."
    )
    ordering = ("-created_at",)
    keyset_field = "created_at"
    # Only orderings an index serves; sorting a million rows by anything else takes seconds.
    sortable_by = ("created",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = ShowFacets.NEVER
    list_per_page = 50
    actions = ("redeliver", "cancel")
    fieldsets = (
        (None, {"fields": ("id", "type", "status_badge", "trigger_link", "source", "remark")}),
        (
            "Delivery",
            {
                "fields": (
                    "attempts_summary",
                    "created",
                    "due",
                    "enqueued",
                    "lease_until",
                    FINISHED_FIELD,
                    "last_status_code",
                    "ordering_key",
                    "blocked_behind",
                )
            },
        ),
        ("Identity", {"fields": ("batch_id", "idempotency_key")}),
        ("Payload", {"fields": ("payload_pretty",)}),
        ("Invocations", {"fields": ("invocations_table",)}),
    )
    readonly_fields = (
        "id",
        "type",
        "status_badge",
        "trigger_link",
        "source",
        "remark",
        "attempts_summary",
        "created",
        "due",
        "enqueued",
        "lease_until",
        "processed",
        "failed_at",
        "cancelled_at",
        "last_status_code",
        "ordering_key",
        "blocked_behind",
        "batch_id",
        "idempotency_key",
        "payload_pretty",
        "invocations_table",
    )

    class Media:
        css = {"all": ("mission_control/admin.css",)}

    def get_changelist(self, request, **kwargs):
        return PayloadSearchChangeList

    def has_redeliver_permission(self, request, obj=None) -> bool:
        """Redeliver: the operators' permission, or change permission on event logs."""
        return request.user.has_perm("eventing.redeliver_eventlog") or request.user.has_perm(
            "eventing.change_eventlog"
        )

    def has_cancel_permission(self, request, obj=None) -> bool:
        """Cancel: the operators' permission, or change permission on event logs."""
        return request.user.has_perm("eventing.cancel_eventlog") or request.user.has_perm(
            "eventing.change_eventlog"
        )

    def get_fieldsets(self, request, obj=None):
        finished = FINISHED_FIELDS.get(obj.status) if obj is not None else None
        return [
            (name, {**options, "fields": _finished_as(options["fields"], finished)})
            for name, options in self.fieldsets
        ]

    def param_problems(self, request: HttpRequest) -> dict[str, str]:
        """Also payload filters out of bounds (eventing.ops.search), by parameter."""
        problems = super().param_problems(request)
        problems.update(keyset_problems(request, self.model))
        try:
            parse_payload_filters(query_pairs(request.GET))
        except ValidationError as exc:
            for name, messages_ in exc.message_dict.items():
                problems.setdefault(name, " ".join(messages_).rstrip("."))
        return problems

    def get_search_results(self, request, queryset, search_term):
        """Exact matches on indexed columns: a UUID is an event or batch id, else a key."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            value = uuid.UUID(term)
        except ValueError:
            return queryset.filter(idempotency_key=term), False
        ids = set(queryset.filter(id=value).values_list("pk", flat=True)[:1])
        ids |= set(queryset.filter(batch_id=value).values_list("pk", flat=True)[:1000])
        ids |= set(queryset.filter(idempotency_key=term).values_list("pk", flat=True)[:1000])
        return queryset.filter(pk__in=ids), False

    @admin.display(description="id")
    def short_id(self, obj: EventLog) -> str:
        return str(obj.id)[:8]

    @admin.display(description="type")
    def type_name(self, obj: EventLog) -> str:
        return breakable(obj.type)

    @admin.display(description="trigger")
    def trigger_column(self, obj: EventLog) -> str:
        return breakable(obj.trigger_name)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: EventLog) -> str:
        return display_time(obj.created_at)

    @admin.display(description="due")
    def due(self, obj: EventLog) -> str:
        return display_time(obj.deliver_at)

    @admin.display(description="processed")
    def processed(self, obj: EventLog) -> str:
        """When it was delivered; cancelled and failed rows keep a time that is not that."""
        if obj.status != EventStatus.PROCESSED:
            return display_time(None)
        return display_time(obj.processed_at)

    @admin.display(description="failed at")
    def failed_at(self, obj: EventLog) -> str:
        return display_time(obj.processed_at)

    @admin.display(description="cancelled at")
    def cancelled_at(self, obj: EventLog) -> str:
        return display_time(obj.processed_at)

    @admin.display(description="attempts")
    def attempts_summary(self, obj: EventLog) -> str:
        """Attempts of the current delivery, and of all deliveries when it was redelivered."""
        calls = list(obj.invocations.order_by("invoked_at", "pk").values_list("attempt", flat=True))
        deliveries = max(delivery_numbers(calls), default=1)
        if deliveries == 1:
            return str(obj.attempts)
        return f"{obj.attempts} in delivery {deliveries} · {len(calls)} in all"

    @admin.display(description="enqueued")
    def enqueued(self, obj: EventLog) -> str:
        return display_time(obj.enqueued_at)

    @admin.display(description="lease until")
    def lease_until(self, obj: EventLog) -> str:
        return display_time(obj.locked_until)

    @admin.display(description="status")
    def status_badge(self, obj: EventLog) -> str:
        return format_html(
            '<span class="mc-status mc-status-{}">{}</span>', obj.status, obj.get_status_display()
        )

    @admin.display(description="trigger")
    def trigger_link(self, obj: EventLog) -> str:
        if obj.trigger_id is None:
            return f"{obj.trigger_name} (deleted)"
        url = reverse("mission_control:triggers_trigger_change", args=[obj.trigger_id])
        return format_html('<a href="{}">{}</a>', url, obj.trigger_name)

    @admin.display(description="blocked behind")
    def blocked_behind(self, obj: EventLog) -> str:
        """The earlier event of the same key this one waits for (cancel or redeliver it there)."""
        head = head_of_key(obj) if obj.status in (EventStatus.STAGED, EventStatus.INTENT) else None
        if head is None:
            return "-"
        url = reverse("mission_control:eventing_eventlog_change", args=[head.pk])
        return format_html(
            '<a href="{}" class="mc-blocked-behind">{}</a> ({}, {} attempt(s)) {}',
            url,
            head.pk,
            head.get_status_display(),
            head.attempts,
            head.remark,
        )

    @admin.display(description="payload")
    def payload_pretty(self, obj: EventLog) -> str:
        return format_html('<pre class="mc-json">{}</pre>', pretty_json(obj.payload))

    @admin.display(description="invocations")
    def invocations_table(self, obj: EventLog) -> str:
        rows = list(obj.invocations.order_by("invoked_at", "pk"))
        deliveries = delivery_numbers([inv.attempt for inv in rows])
        invocations = [
            {
                "delivery": delivery,
                "attempt": inv.attempt,
                "invoked_at": display_time(inv.invoked_at),
                "duration_ms": inv.duration_ms,
                "url": (inv.request or {}).get("url", ""),
                "request_headers": redact_headers((inv.request or {}).get("headers")),
                "request_body": pretty_json((inv.request or {}).get("body") or ""),
                "status_code": inv.response_status_code,
                "succeeded": inv.succeeded,
                "response_headers": redact_headers(inv.response_headers),
                "response_body": pretty_json(inv.response_body or ""),
                "error": inv.error_msg,
            }
            for inv, delivery in zip(rows, deliveries, strict=True)
        ]
        return render_to_string(
            "mission_control/eventlog/invocations.html", {"invocations": invocations}
        )

    # Actions: through eventing.dispatch.operations, reporting counts.

    @admin.action(
        description="Redeliver selected events (fresh retry budget)", permissions=["redeliver"]
    )
    def redeliver(self, request, queryset):
        selected = list(queryset.values_list("pk", flat=True))
        count = actions.redeliver(selected)
        self._report(
            request,
            count,
            len(selected),
            "redelivered",
            "only processed, failed or cancelled events can be redelivered",
        )

    @admin.action(description="Cancel selected events", permissions=["cancel"])
    def cancel(self, request, queryset):
        selected = list(queryset.values_list("pk", flat=True))
        count = actions.cancel(selected)
        self._report(
            request, count, len(selected), "cancelled", "only staged events can be cancelled"
        )

    def _report(self, request, count: int, selected: int, verb: str, why: str) -> None:
        text = ngettext("%(n)d event %(verb)s.", "%(n)d events %(verb)s.", count) % {
            "n": count,
            "verb": verb,
        }
        if count < selected:
            text += f" {selected - count} skipped: {why}."
        self.message_user(request, text, messages.SUCCESS if count else messages.WARNING)

    def get_urls(self):
        urls = super().get_urls()
        extra = [
            path(
                "redeliver-failed/",
                self.admin_site.admin_view(self.redeliver_failed_view),
                name="eventing_eventlog_redeliver_failed",
            ),
            path(
                "replay/",
                self.admin_site.admin_view(self.replay_view),
                name="eventing_eventlog_replay",
            ),
            path(
                "<path:object_id>/operate/<str:operation>/",
                self.admin_site.admin_view(self.operate_view),
                name="eventing_eventlog_operate",
            ),
        ]
        return extra + urls

    def redeliver_failed_view(self, request: HttpRequest):
        """Redeliver every failed event of one trigger since a time."""
        if not self.has_redeliver_permission(request):
            raise PermissionDenied
        form = RedeliverFailedForm(request.POST or None, initial=dict(request.GET.items()))
        if request.method == "POST" and form.is_valid():
            trigger = form.cleaned_data["trigger"]
            since = form.cleaned_data["since"]
            count = actions.redeliver_failed_since(trigger.pk, since)
            self.message_user(
                request,
                ngettext(
                    "%(n)d failed event of %(t)s redelivered.",
                    "%(n)d failed events of %(t)s redelivered.",
                    count,
                )
                % {"n": count, "t": trigger.name},
                messages.SUCCESS if count else messages.WARNING,
            )
            changelist = reverse("mission_control:eventing_eventlog_changelist")
            return HttpResponseRedirect(f"{changelist}?trigger={trigger.pk}")
        context = {
            **self.admin_site.each_context(request),
            "title": "Redeliver failed events",
            "form": form,
            "opts": self.opts,
        }
        return TemplateResponse(request, "mission_control/eventlog/redeliver_failed.html", context)

    def replay_view(self, request: HttpRequest):
        """Replay a time window: the first POST counts the events, the confirmed one stages
        exactly that window again."""
        if not self.has_redeliver_permission(request):
            raise PermissionDenied
        form = ReplayForm(request.POST or None, initial=dict(request.GET.items()))
        preview, window = None, None
        if request.method == "POST" and form.is_valid():
            window = actions.replay_window(form.cleaned_data)
            if form.cleaned_data["confirm"]:
                count = operations.replay(window)
                self.message_user(
                    request,
                    ngettext("%d event redelivered.", "%d events redelivered.", count) % count,
                    messages.SUCCESS if count else messages.WARNING,
                )
                return HttpResponseRedirect(reverse("mission_control:eventing_eventlog_changelist"))
            preview = window.count_by_trigger()
            form = ReplayForm(initial={**request.POST.dict(), "confirm": True})
            form.initial["statuses"] = request.POST.getlist("statuses")
        context = {
            **self.admin_site.each_context(request),
            "title": "Replay events",
            "form": form,
            "preview": preview,
            "total": sum(preview.values()) if preview is not None else None,
            "trigger_name": ", ".join(window.triggers) if window else "",
            "opts": self.opts,
        }
        return TemplateResponse(request, "mission_control/eventlog/replay.html", context)

    def operate_view(self, request: HttpRequest, object_id: str, operation: str):
        """Buttons of the detail page: redeliver (POST), or cancel (GET asks, POST cancels)."""
        asks = request.method == "GET" and operation == "cancel"
        if request.method != "POST" and not asks:
            return HttpResponseNotAllowed(["POST"])
        event = self.get_object(request, object_id)
        if event is None:  # not a UUID, or no such event
            raise Http404("No such event.")
        if asks and self.has_cancel_permission(request):
            return self.cancel_confirmation(request, event)
        if operation == "redeliver" and self.has_redeliver_permission(request):
            done = actions.redeliver([event.pk])
            why = f"it is {event.status}; only finished events can be redelivered"
        elif operation == "cancel" and self.has_cancel_permission(request):
            done = actions.cancel([event.pk])
            why = f"it is {event.status}; only staged events can be cancelled"
        else:
            raise PermissionDenied
        verb = "redelivered" if operation == "redeliver" else "cancelled"
        if done:
            self.message_user(request, f"Event {verb}.", messages.SUCCESS)
        else:
            self.message_user(request, f"Event not {verb}: {why}.", messages.WARNING)
        return HttpResponseRedirect(
            reverse("mission_control:eventing_eventlog_change", args=[event.pk])
        )

    def cancel_confirmation(self, request: HttpRequest, event: EventLog) -> TemplateResponse:
        """The page that asks before cancelling: cancelling cannot be undone by a click."""
        context = {
            **self.admin_site.each_context(request),
            "title": "Cancel this event?",
            "event": event,
            "cancellable": event.status in (EventStatus.STAGED, EventStatus.INTENT),
            "due": display_time(event.deliver_at),
            "opts": self.opts,
        }
        return TemplateResponse(
            request, "mission_control/eventlog/cancel_confirmation.html", context
        )

    def render_change_form(self, request, context, *args, **kwargs):
        context["can_redeliver"] = self.has_redeliver_permission(request)
        context["can_cancel"] = self.has_cancel_permission(request)
        context["final_statuses"] = [
            s.value for s in (EventStatus.PROCESSED, EventStatus.FAILED, EventStatus.CANCELLED)
        ]
        return super().render_change_form(request, context, *args, **kwargs)


def _finished_as(fields: tuple[str, ...], finished: str | None) -> tuple[str, ...]:
    """The fieldset's fields with the finish time under its status' name, or without it."""
    if finished is None:
        return tuple(field for field in fields if field != FINISHED_FIELD)
    return tuple(finished if field == FINISHED_FIELD else field for field in fields)
