"""How Mission Control writes values: one timestamp format on every page."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

# ISO-like, to the second, with the zone: sorts as text and reads the same on every page.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S %Z"
NO_TIME = "—"


def display_time(value: dt.datetime | None) -> str:
    """A timestamp as Mission Control shows it, e.g. `2026-11-29 10:05:41 UTC`; `—` for None."""
    if value is None:
        return NO_TIME
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return timezone.localtime(value).strftime(TIME_FORMAT)
