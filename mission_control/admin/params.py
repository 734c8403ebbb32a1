"""Change-list query parameters, checked before they reach the database, and the list filters
the event and invocation lists share."""

from __future__ import annotations

import datetime as dt
import re

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.utils import timezone

from triggers.models import Trigger

# A primary key as a change-list filter value: digits, within a bigint.
PK_RE = re.compile(r"^[0-9]{1,18}\Z")


class CheckedFilter(admin.SimpleListFilter):
    """A list filter accepting only values that match `value_pattern` (CheckedParamsMixin)."""

    value_pattern: re.Pattern[str]
    expected = "a valid value"


class ByTriggerFilter(CheckedFilter):
    """Rows of one trigger, by id; `lookup` says how a row reaches its trigger."""

    title = "trigger"
    parameter_name = "trigger"
    value_pattern = PK_RE
    expected = "a trigger id"
    lookup = "trigger_id"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in Trigger.objects.values_list("pk", "name")]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.lookup: self.value()}) if self.value() else queryset


class RecentFilter(admin.SimpleListFilter):
    """Recent windows of one indexed time column (`field`), and `OLDER` ones before them."""

    field = ""
    WINDOWS: dict[str, tuple[str, dt.timedelta]] = {
        "1h": ("Last hour", dt.timedelta(hours=1)),
        "24h": ("Last 24 hours", dt.timedelta(hours=24)),
        "7d": ("Last 7 days", dt.timedelta(days=7)),
    }
    OLDER: dict[str, tuple[str, dt.timedelta]] = {}

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in {**self.WINDOWS, **self.OLDER}.items()]

    def queryset(self, request, queryset):
        value = self.value()
        if value in self.WINDOWS:
            since = timezone.now() - self.WINDOWS[value][1]
            return queryset.filter(**{f"{self.field}__gte": since})
        if value in self.OLDER:
            return queryset.filter(**{f"{self.field}__lt": timezone.now() - self.OLDER[value][1]})
        return queryset


class CheckedParamsMixin:
    """Drop, with a warning, query parameters holding NUL or a value a filter cannot read."""

    def param_problems(self, request: HttpRequest) -> dict[str, str]:
        """Why each bad query parameter is bad, by name."""
        patterns = {
            spec.parameter_name: spec
            for spec in self.list_filter
            if isinstance(spec, type) and issubclass(spec, CheckedFilter)
        }
        problems = {}
        for name, values in request.GET.lists():
            for value in values:
                if "\x00" in name or "\x00" in value:
                    problems[name] = "it holds a NUL character"
                elif name in patterns and value and not patterns[name].value_pattern.match(value):
                    problems[name] = f"{value[:40]!r} is not {patterns[name].expected}"
        return problems

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        """The change list, once every bad parameter is dropped (a redirect with a warning)."""
        problems = self.param_problems(request)
        if not problems:
            return super().changelist_view(request, extra_context)
        query = request.GET.copy()
        for name, why in problems.items():
            query.pop(name, None)
            shown = name.replace("\x00", "\\x00")[:40]
            self.message_user(request, f"Ignored the {shown!r} filter: {why}.", messages.WARNING)
        return HttpResponseRedirect(f"{request.path}?{query.urlencode()}")
