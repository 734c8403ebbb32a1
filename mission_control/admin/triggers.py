"""Admins of triggers and event types: state, 24 h figures, a form that adapts to the type."""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.db.models import DateTimeField, IntegerField, OuterRef, Subquery, Value
from django.db.models.expressions import RawSQL
from django.http import (
    Http404,
    HttpRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import ngettext

from eventing.capture.cron import upcoming
from eventing.capture.database import describe_capture, triggers_changing
from eventing.models import CircuitState, EventLog, EventStatus, TriggerCircuit
from triggers import fields, types
from triggers.masking import MASK, mask_headers
from triggers.models import EventType, Trigger
from triggers.schedule import ScheduleError

from .. import actions
from ..counting import estimate_past, value_shares
from ..display import breakable, display_time
from ..forms import EventTypeForm, TriggerForm
from ..sites import site
from ..transforms import PreviewInputError, parse_sample, preview_request
from .params import CheckedParamsMixin

# The test action delivers synchronously inside the request; a few triggers at most.
MAX_TEST_TRIGGERS = 5


# Per trigger and status, the list reads at most this many index entries; past it it shows the
# planner's estimate ("≈"), so a busy day costs the list what a quiet one does.
LIST_COUNT_CAP = 1000


def capped_count_since(status: str, since: dt.datetime) -> RawSQL:
    """Per-trigger count of events with `status` created since `since`, stopping at
    LIST_COUNT_CAP + 1 (index: trigger, status, created_at)."""
    table = EventLog._meta.db_table
    return RawSQL(
        f"SELECT count(*) FROM (SELECT 1 FROM {table} AS e WHERE e.trigger_id = "
        f"{Trigger._meta.db_table}.id AND e.status = %s AND e.created_at >= %s LIMIT %s) AS c",
        (status, since, LIST_COUNT_CAP + 1),
        output_field=IntegerField(),
    )


def list_count(trigger: Trigger, status: str, capped: int) -> tuple[int, bool]:
    """(count, estimated) for the list: the capped count, or past the cap the planner's."""
    if capped <= LIST_COUNT_CAP:
        return capped, False
    window = EventLog.objects.filter(
        trigger_id=trigger.pk, status=status, created_at__gte=trigger.counted_since
    )
    estimate = status_estimate_and_shares(window.db, status, trigger.counted_since)
    if estimate is None:
        return estimate_past(window, LIST_COUNT_CAP)
    total, (shares, other) = estimate
    share = shares.get(str(trigger.pk), other)
    return max(round(total * share), LIST_COUNT_CAP + 1), True


@lru_cache(maxsize=8)
def status_estimate_and_shares(db: str, status: str, since: dt.datetime):
    """The planner's estimate of the events in `status` since `since` (all triggers) and each
    trigger's share of events (PostgreSQL's statistics), or None: the trigger list's estimates
    from one EXPLAIN per status, not one per trigger (10-40 ms each on a busy server). Keyed by
    the list's `since`: one render asks once per status."""
    if connections[db].vendor != "postgresql":
        return None
    window = EventLog.objects.using(db).filter(status=status, created_at__gte=since)
    shares = value_shares(window, "trigger_id")
    if shares is None:
        return None
    return estimate_past(window, LIST_COUNT_CAP)[0], shares


def schedule_error(exc: ScheduleError) -> str:
    """A stored schedule with no reachable run, shown on its row instead of breaking the page."""
    return format_html(
        '<span class="mc-state mc-state-error">schedule error</span>'
        '<div class="mc-reason">{}</div>',
        str(exc),
    )


def last_delivery() -> Subquery:
    """When the trigger's most recent delivered event was processed."""
    rows = (
        EventLog.objects.filter(trigger=OuterRef("pk"), status=EventStatus.PROCESSED)
        .order_by("-created_at")
        .values("processed_at")[:1]
    )
    return Subquery(rows)


class TimestampsMixin:
    """created_at and updated_at in Mission Control's one time format (Django's differs)."""

    @admin.display(description="created", ordering="created_at")
    def created(self, obj) -> str:
        return display_time(obj.created_at)

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, obj) -> str:
        return display_time(obj.updated_at)


def circuit_of(trigger: Trigger) -> TriggerCircuit | None:
    """The trigger's circuit row (select_related by the admin's queryset), if any."""
    return getattr(trigger, "circuit", None)


class StateFilter(admin.SimpleListFilter):
    """Enabled (delivering), paused, or disabled."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("enabled", "Enabled"), ("paused", "Paused"), ("disabled", "Disabled")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "enabled":
            return queryset.filter(enabled=True, paused=False)
        if value == "paused":
            return queryset.filter(enabled=True, paused=True)
        if value == "disabled":
            return queryset.filter(enabled=False)
        return queryset


# Read-only displays of the change page, after their group's fields (triggers.fields).
DISPLAYS = {
    "matching": ("capture",),
    "schedule": ("next_runs",),
    "transform": ("transform_preview",),
    "state": ("circuit_breaker",),
}


class TriggerAdminForm(TriggerForm):
    """The trigger form, whose displays are shown and hidden with their group."""

    displays = DISPLAYS


@admin.register(Trigger, site=site)
class TriggerAdmin(TimestampsMixin, CheckedParamsMixin, admin.ModelAdmin):
    """Define webhooks and what fires them; operate them with actions."""

    form = TriggerAdminForm
    change_form_template = "mission_control/trigger/change_form.html"
    list_display = (
        "trigger_name",
        "type_name",
        "source_name",
        "url_template",
        "state",
        "processed_24h",
        "failed_24h",
        "success_rate",
        "last_delivery",
        "next_run",
    )
    list_filter = ("type", StateFilter)
    search_fields = ("name", "type", "source", "url", "description")
    readonly_fields = (
        "signing_secret_display",
        "capture",
        "next_runs",
        "circuit_breaker",
        "transform_preview",
        "created",
        "updated",
    )
    actions = (
        "enable",
        "disable",
        "pause",
        "resume",
        "send_test_event",
        "duplicate",
        "rotate_secret",
        "replay_events",
    )
    # Generated from the trigger's field groups (triggers.fields): the form's kind, type and
    # storage pickers stand in for type and source, displays follow their group's fields.
    fieldsets = fields.fieldsets(
        replace={
            "type": ("kind", "custom_type"),
            "source": ("source_model", "source_storage"),
            "signing_secret": ("signing_secret_display",),
            "cron_last_tick": (),
            "created_at": ("created",),
            "updated_at": ("updated",),
        },
        extra=DISPLAYS,
        options={
            "transform": {
                "classes": ("mc-transform",),
                "description": fields.group("transform").help,
            }
        },
    )

    # What users without change permission see: stored values, credentials (header values,
    # the signing secret) masked.
    view_fieldsets = fields.fieldsets(
        replace={
            "headers": ("masked_headers",),
            "signing_secret": ("masked_signing_secret",),
            "cron_last_tick": (),
            "enabled": ("state",),
            "paused": (),
            "paused_reason": (),
            "created_at": ("created",),
            "updated_at": ("updated",),
        },
        extra={"matching": ("capture",), "schedule": ("next_runs",), "state": ("circuit_breaker",)},
    )

    class Media:
        css = {"all": ("mission_control/admin.css",)}
        js = ("mission_control/trigger_form.js", "mission_control/transform_preview.js")

    def _view_only(self, request: HttpRequest, obj) -> bool:
        return obj is not None and not self.has_change_permission(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj=None):
        if self._view_only(request, obj):
            return self.view_fieldsets
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if self._view_only(request, obj):
            return flatten_fieldsets(self.view_fieldsets)
        return super().get_readonly_fields(request, obj)

    @admin.display(description="headers")
    def masked_headers(self, obj: Trigger) -> str:
        return format_html(
            '<pre class="mc-json">{}</pre>', json.dumps(mask_headers(obj.headers), indent=2)
        )

    def save_model(self, request: HttpRequest, obj: Trigger, form, change: bool) -> None:
        """Save through the triggers-changed service: capture follows in the same transaction."""
        with triggers_changing(obj._state.db):
            super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Trigger) -> None:
        """Delete through the triggers-changed service (its table may need no function now)."""
        with triggers_changing(obj._state.db):
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        """The bulk delete action, through the triggers-changed service."""
        with triggers_changing(queryset.db):
            super().delete_queryset(request, queryset)

    def get_queryset(self, request: HttpRequest):
        since = timezone.now() - dt.timedelta(hours=24)
        return (
            super()
            .get_queryset(request)
            .select_related("circuit")
            .annotate(
                counted_since=Value(since, output_field=DateTimeField()),
                processed_24h=capped_count_since(EventStatus.PROCESSED, since),
                failed_24h=capped_count_since(EventStatus.FAILED, since),
                last_delivery_at=last_delivery(),
            )
        )

    @admin.display(description="capture")
    def capture(self, obj: Trigger | None) -> str:
        """How DB events reach this trigger; a missing or stale trigger function says so."""
        return describe_capture(obj or Trigger(type=""))

    @admin.display(description="name", ordering="name")
    def trigger_name(self, obj: Trigger) -> str:
        return breakable(obj.name)

    @admin.display(description="type", ordering="type")
    def type_name(self, obj: Trigger) -> str:
        return breakable(obj.type)

    @admin.display(description="source", ordering="source")
    def source_name(self, obj: Trigger) -> str:
        return breakable(obj.source) if obj.source else "—"

    @admin.display(description="next runs")
    def next_runs(self, obj: Trigger | None) -> str:
        """A CRON trigger's next five ticks in its timezone, and the last one handled."""
        if obj is None or obj.type != types.CRON:
            return "—"
        try:
            ticks = upcoming(obj, 5)
        except ScheduleError as exc:
            return schedule_error(exc)
        last = obj.cron_last_tick.isoformat(sep=" ") if obj.cron_last_tick else "none yet"
        return format_html(
            '<ul class="mc-next-runs">{}</ul><div class="mc-reason">last tick: {}</div>',
            format_html_join("", "<li>{}</li>", ((t.isoformat(sep=" "),) for t in ticks)),
            last,
        )

    @admin.display(description="next run")
    def next_run(self, obj: Trigger) -> str:
        """A CRON trigger's next tick; nothing for other types."""
        try:
            ticks = upcoming(obj, 1)
        except ScheduleError as exc:
            return schedule_error(exc)
        return ticks[0].isoformat(sep=" ") if ticks else "—"

    @admin.display(description="URL", ordering="url")
    def url_template(self, obj: Trigger) -> str:
        """The URL as configured: {{ENV_VAR}} placeholders are shown, never resolved."""
        return obj.url

    @admin.display(description="state")
    def state(self, obj: Trigger) -> str:
        if not obj.enabled:
            return mark_safe('<span class="mc-state mc-state-disabled">disabled</span>')
        if obj.paused:
            return format_html(
                '<span class="mc-state mc-state-paused" title="{}">paused</span>'
                '<div class="mc-reason">{}</div>',
                obj.paused_reason,
                obj.paused_reason or "paused by an operator",
            )
        if circuit_of(obj) and circuit_of(obj).state == CircuitState.OPEN:
            return mark_safe('<span class="mc-state mc-state-paused">circuit open</span>')
        return mark_safe('<span class="mc-state mc-state-enabled">enabled</span>')

    @admin.display(description="circuit breaker")
    def circuit_breaker(self, obj: Trigger | None) -> str:
        """Closed or open, failures counted, when the next probe goes."""
        row = circuit_of(obj) if obj and obj.pk else None
        if row is None or (row.state == CircuitState.CLOSED and not row.consecutive_failures):
            return "closed (no failure counted)"
        if row.state == CircuitState.CLOSED:
            return format_html(
                "closed · {} failed attempt(s) in a row since {}; the last: {}",
                row.consecutive_failures,
                row.failing_since,
                row.last_error,
            )
        return format_html(
            '<span class="mc-state mc-state-paused">open</span> since {} after {} failed '
            "attempt(s); next probe at {}; the last error: {}",
            row.opened_at,
            row.consecutive_failures,
            row.next_probe_at,
            row.last_error,
        )

    def counts_24h(self, obj: Trigger) -> dict[str, tuple[int, bool]]:
        """Processed and failed in 24 h, each (count, estimated), computed once per row."""
        if not hasattr(obj, "list_counts"):
            obj.list_counts = {
                status: list_count(obj, status, getattr(obj, f"{status}_24h"))
                for status in (EventStatus.PROCESSED, EventStatus.FAILED)
            }
        return obj.list_counts

    @admin.display(description="processed 24 h", ordering="processed_24h")
    def processed_24h(self, obj: Trigger) -> str:
        count, estimated = self.counts_24h(obj)[EventStatus.PROCESSED]
        return f"≈{count}" if estimated else str(count)

    @admin.display(description="failed 24 h", ordering="failed_24h")
    def failed_24h(self, obj: Trigger) -> str:
        count, estimated = self.counts_24h(obj)[EventStatus.FAILED]
        return f"≈{count}" if estimated else str(count)

    @admin.display(description="success 24 h")
    def success_rate(self, obj: Trigger) -> str:
        counts = self.counts_24h(obj)
        processed, processed_estimated = counts[EventStatus.PROCESSED]
        failed, failed_estimated = counts[EventStatus.FAILED]
        done = processed + failed
        if not done:
            return "—"
        sign = "≈" if processed_estimated or failed_estimated else ""
        return f"{sign}{100 * processed / done:.1f} %"

    @admin.display(description="last delivery", ordering="last_delivery_at")
    def last_delivery(self, obj: Trigger) -> str:
        return display_time(obj.last_delivery_at)

    @admin.display(description="preview")
    def transform_preview(self, obj: Trigger | None) -> str:
        """The request the transform makes, rendered live as the form changes (never sent)."""
        url = reverse("mission_control:triggers_trigger_preview")
        return format_html(
            '<div id="mc-preview" data-url="{}" data-trigger="{}">'
            '<label for="mc-preview-data">Sample payload (JSON; empty: the latest event)</label>'
            '<textarea id="mc-preview-data" rows="3" cols="80"></textarea> '
            '<button type="button" class="button" id="mc-preview-run">Preview</button>'
            '<div id="mc-preview-source" class="mc-reason"></div>'
            '<pre id="mc-preview-error" class="mc-preview-error" hidden></pre>'
            '<pre id="mc-preview-request" class="mc-json"></pre></div>',
            url,
            obj.pk if obj and obj.pk else "",
        )

    def preview_view(self, request: HttpRequest):
        """POST the form's transform (JSON): the request it makes over an event, as JSON.

        Malformed input is a 400 naming the field; a stored trigger is previewed only for
        users who may view it, and its latest event only for users who may view event logs.
        """
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (self.has_change_permission(request) or self.has_add_permission(request)):
            raise PermissionDenied
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, RecursionError) as exc:
            return JsonResponse({"error": f"Not JSON: {str(exc)[:200]}"}, status=400)
        if not isinstance(data, dict):
            return JsonResponse({"error": "the body must be a JSON object"}, status=400)
        fields = data.get("fields") if data.get("fields") is not None else {}
        if not isinstance(fields, dict):
            return JsonResponse({"error": "fields: expected a JSON object"}, status=400)
        stored = None
        if data.get("trigger"):
            if not isinstance(data["trigger"], (str, int)) or isinstance(data["trigger"], bool):
                return JsonResponse({"error": "trigger: expected a trigger id"}, status=400)
            stored = self.get_object(request, str(data["trigger"]))
            if stored is None:
                raise Http404("No such trigger.")
            if not self.has_view_or_change_permission(request, stored):
                raise PermissionDenied
        try:
            sample = parse_sample(data.get("sample"))
            reply = preview_request(
                fields,
                stored,
                sample,
                may_read_events=request.user.has_perm("eventing.view_eventlog"),
            )
        except PreviewInputError as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        return JsonResponse(reply)

    @admin.display(description="signing secret")
    def signing_secret_display(self, obj: Trigger) -> str:
        """The whsec_ secret receivers verify with; on the page of users who may change it."""
        if not obj.pk:
            return "Generated when the trigger is saved."
        return format_html('<code class="mc-secret">{}</code>', obj.signing_secret)

    @admin.display(description="signing secret")
    def masked_signing_secret(self, obj: Trigger) -> str:
        """What viewers see: seeing the secret would let them sign as this instance."""
        return format_html(
            '<code class="mc-secret">{}</code> <span class="mc-reason">{}</span>',
            MASK,
            "shown to users who may change triggers",
        )

    # Actions: each calls a function of mission_control.actions and reports with a count.

    @admin.action(description="Enable selected triggers", permissions=["change"])
    def enable(self, request, queryset):
        count = actions.set_enabled(queryset.values_list("pk", flat=True), True)
        self.message_user(
            request,
            ngettext("%d trigger enabled.", "%d triggers enabled.", count) % count,
            messages.SUCCESS,
        )

    @admin.action(description="Disable selected triggers", permissions=["change"])
    def disable(self, request, queryset):
        count = actions.set_enabled(queryset.values_list("pk", flat=True), False)
        self.message_user(
            request,
            ngettext("%d trigger disabled.", "%d triggers disabled.", count) % count,
            messages.SUCCESS,
        )

    @admin.action(description="Pause selected triggers (events are held)", permissions=["change"])
    def pause(self, request, queryset):
        reason = f"Paused by {request.user.get_username()} in Mission Control"
        count = actions.pause_triggers(queryset.values_list("pk", flat=True), reason)
        self.message_user(
            request,
            ngettext("%d trigger paused.", "%d triggers paused.", count) % count,
            messages.SUCCESS,
        )

    @admin.action(description="Resume selected triggers", permissions=["change"])
    def resume(self, request, queryset):
        count = actions.resume_triggers(queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            ngettext("%d trigger resumed.", "%d triggers resumed.", count) % count,
            messages.SUCCESS,
        )

    @admin.action(description="Send a test event", permissions=["change"])
    def send_test_event(self, request, queryset):
        triggers = list(queryset.order_by("name")[: MAX_TEST_TRIGGERS + 1])
        if len(triggers) > MAX_TEST_TRIGGERS:
            self.message_user(
                request, f"Select at most {MAX_TEST_TRIGGERS} triggers to test.", messages.ERROR
            )
            return
        for trigger in triggers:
            self._report_test(request, trigger, actions.send_test_event(trigger))

    def _report_test(self, request, trigger: Trigger, result: actions.TestEventResult) -> None:
        level = messages.SUCCESS if result.succeeded else messages.ERROR
        self.message_user(request, f"{trigger.name}: {result.summary()}", level)

    @admin.action(
        description="Duplicate selected triggers (copies start disabled)", permissions=["change"]
    )
    def duplicate(self, request, queryset):
        copies = [actions.duplicate_trigger(trigger) for trigger in queryset]
        names = ", ".join(copy.name for copy in copies)
        self.message_user(
            request,
            ngettext("%d trigger duplicated: %s.", "%d triggers duplicated: %s.", len(copies))
            % (len(copies), names),
            messages.SUCCESS,
        )

    @admin.action(description="Rotate signing secret", permissions=["change"])
    def rotate_secret(self, request, queryset):
        count = 0
        for trigger in queryset:
            actions.rotate_signing_secret(trigger)
            count += 1
        self.message_user(
            request,
            ngettext(
                "%d signing secret rotated; update its receiver.",
                "%d signing secrets rotated; update their receivers.",
                count,
            )
            % count,
            messages.WARNING,
        )

    @admin.action(description="Replay events in a time window…", permissions=["change"])
    def replay_events(self, request, queryset):
        """To the replay page (count first, then confirm), for the first selected trigger."""
        trigger = queryset.order_by("name").first()
        url = reverse("mission_control:eventing_eventlog_replay")
        return HttpResponseRedirect(f"{url}?trigger={trigger.pk}" if trigger else url)

    # The same operations as buttons on one trigger's page.

    def get_urls(self):
        urls = super().get_urls()
        extra = [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="triggers_trigger_preview",
            ),
            path(
                "<path:object_id>/operate/<str:operation>/",
                self.admin_site.admin_view(self.operate_view),
                name="triggers_trigger_operate",
            ),
        ]
        return extra + urls

    def operate_view(self, request: HttpRequest, object_id: str, operation: str):
        """POST-only buttons of the change page: test, rotate, duplicate, pause, resume."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        trigger = self.get_object(request, object_id)
        if trigger is None:  # not a number, or no such trigger
            raise Http404("No such trigger.")
        if not self.has_change_permission(request, trigger):
            raise PermissionDenied
        change_url = reverse("mission_control:triggers_trigger_change", args=[trigger.pk])
        if operation == "test":
            self._report_test(request, trigger, actions.send_test_event(trigger))
        elif operation == "rotate":
            actions.rotate_signing_secret(trigger)
            self.message_user(
                request, "Signing secret rotated; update the receiver.", messages.WARNING
            )
        elif operation == "duplicate":
            copy = actions.duplicate_trigger(trigger)
            self.message_user(request, f"Duplicated as {copy.name} (disabled).", messages.SUCCESS)
            change_url = reverse("mission_control:triggers_trigger_change", args=[copy.pk])
        elif operation == "pause":
            actions.pause_triggers(
                [trigger.pk], f"Paused by {request.user.get_username()} in Mission Control"
            )
            self.message_user(request, "Trigger paused.", messages.SUCCESS)
        elif operation == "resume":
            actions.resume_triggers([trigger.pk])
            self.message_user(request, "Trigger resumed.", messages.SUCCESS)
        else:
            self.message_user(request, f"Unknown operation {operation!r}.", messages.ERROR)
        return HttpResponseRedirect(change_url)


@admin.register(EventType, site=site)
class EventTypeAdmin(TimestampsMixin, CheckedParamsMixin, admin.ModelAdmin):
    """Custom event types: description, JSON Schema (checked on save) and queue rule."""

    form = EventTypeForm
    list_display = ("name", "queue_rule", "has_schema", "description", "updated")
    list_filter = ("queue_rule",)
    search_fields = ("name", "description")
    readonly_fields = ("created", "updated")

    @admin.display(description="schema", boolean=True)
    def has_schema(self, obj: EventType) -> bool:
        return bool(obj.schema)
