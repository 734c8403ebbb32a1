"""Invocation log admin: every delivery attempt across events, as Hasura's invocation logs tab."""

from __future__ import annotations

import re

from django.contrib import admin
from django.contrib.admin import ShowFacets
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from eventing.models import InvocationLog

from ..counting import EstimatedCountPaginator
from ..display import display_time
from ..keyset import keyset_problems
from ..sites import site
from .events import RecentFirstChangeList
from .params import ByTriggerFilter, CheckedFilter, CheckedParamsMixin, RecentFilter
from .readonly import ReadOnlyAdminMixin


class InvocationTriggerFilter(ByTriggerFilter):
    """Attempts of one trigger (by id; its events by the index trigger, status, created_at)."""

    lookup = "event__trigger_id"


class StatusCodeFilter(CheckedFilter):
    """The reply's HTTP status; `none` for attempts that got no reply."""

    title = "status code"
    parameter_name = "status_code"
    value_pattern = re.compile(r"^([1-5][0-9]{2}|none)\Z")
    expected = "an HTTP status code or none"
    COMMON = ("200", "201", "204", "400", "404", "408", "410", "429", "500", "502", "503", "504")

    def lookups(self, request, model_admin):
        return [(code, code) for code in self.COMMON] + [("none", "no reply")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value == "none":
            return queryset.filter(response_status_code__isnull=True)
        return queryset.filter(response_status_code=int(value))


class InvokedFilter(RecentFilter):
    """Recent windows of invoked_at (indexed)."""

    title = "invoked"
    parameter_name = "invoked"
    field = "invoked_at"


@admin.register(InvocationLog, site=site)
class InvocationLogAdmin(ReadOnlyAdminMixin, CheckedParamsMixin, admin.ModelAdmin):
    """Delivery attempts, newest first, filterable by trigger, status code, outcome and time.
    Read-only: an attempt is a record; its event's page redelivers."""

    list_display = (
        "invoked",
        "trigger_name",
        "event_link",
        "attempt",
        "response_status_code",
        "succeeded",
        "duration_ms",
        "error_msg",
    )
    list_display_links = ("invoked",)
    list_filter = (InvocationTriggerFilter, StatusCodeFilter, "succeeded", InvokedFilter)
    ordering = ("-invoked_at",)
    keyset_field = "invoked_at"
    change_list_template = "mission_control/keyset_change_list.html"
    sortable_by = ("invoked",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = ShowFacets.NEVER
    list_per_page = 50
    fields = (
        "event_link",
        "trigger_name",
        "attempt",
        "invoked",
        "duration_ms",
        "response_status_code",
        "succeeded",
        "error_msg",
        "request",
        "response_headers",
        "response_body",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ("mission_control/admin.css",)}

    def get_changelist(self, request, **kwargs):
        return RecentFirstChangeList

    def param_problems(self, request: HttpRequest) -> dict[str, str]:
        """Also a list position that cannot be read (mission_control.keyset)."""
        return {**super().param_problems(request), **keyset_problems(request, self.model)}

    def get_queryset(self, request):
        # The event's name and type, not its payload: one join, no large column per row.
        return super().get_queryset(request).select_related("event").defer("event__payload")

    @admin.display(description="invoked", ordering="invoked_at")
    def invoked(self, obj: InvocationLog) -> str:
        return display_time(obj.invoked_at)

    @admin.display(description="trigger")
    def trigger_name(self, obj: InvocationLog) -> str:
        return obj.event.trigger_name

    @admin.display(description="event")
    def event_link(self, obj: InvocationLog) -> str:
        url = reverse("mission_control:eventing_eventlog_change", args=[obj.event_id])
        return format_html('<a href="{}">{} {}</a>', url, obj.event.type, str(obj.event_id)[:8])
