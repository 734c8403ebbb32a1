"""Change-list query parameters, checked before they reach the database."""

from __future__ import annotations

import re

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect

# A primary key as a change-list filter value: digits, within a bigint.
PK_RE = re.compile(r"^[0-9]{1,18}\Z")


class CheckedFilter(admin.SimpleListFilter):
    """A list filter accepting only values that match `value_pattern` (CheckedParamsMixin)."""

    value_pattern: re.Pattern[str]
    expected = "a valid value"


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
