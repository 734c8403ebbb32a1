"""How Mission Control writes values: one timestamp format on every page."""

from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone
from django.utils.html import format_html_join

# ISO-like, to the second, with the zone: sorts as text and reads the same on every page.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S %Z"
NO_TIME = "—"
# Runs of a name that end in a separator, or its last run.
BREAK_AFTER = re.compile(r"[^_.]*[_.]|[^_.]+")


def display_time(value: dt.datetime | None) -> str:
    """A timestamp as Mission Control shows it, e.g. `2026-11-29 10:05:41 UTC`; `—` for None."""
    if value is None:
        return NO_TIME
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return timezone.localtime(value).strftime(TIME_FORMAT)


def breakable(name: str) -> str:
    """A name with line-break opportunities after `_` and `.`, so narrow columns wrap it there
    (`orders_created` has no space to wrap at, and breaking mid-word is hard to read)."""
    return format_html_join("", "{}<wbr>", ((part,) for part in BREAK_AFTER.findall(name)))
