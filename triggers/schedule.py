"""CRON schedules read with bounded work: every look ahead or back stops after a few years."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from croniter import CroniterError, croniter

# How far a schedule is searched, both ways: an expression with no run in this many years is
# refused on save, and a stored one that has none is reported, never searched further.
LOOKAHEAD_YEARS = 5


class ScheduleError(ValueError):
    """The expression or timezone names no time the search can reach."""


def zone(name: str | None) -> zoneinfo.ZoneInfo:
    """The timezone an expression is read in (UTC when blank)."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{name!r} is not an IANA timezone name.") from None


def _iterator(expression: str, start: dt.datetime) -> croniter:
    # croniter searches 50 years by default, and each call walks every candidate day: bound it.
    try:
        return croniter(expression, start, max_years_between_matches=LOOKAHEAD_YEARS)
    except (CroniterError, ValueError, TypeError) as exc:
        raise ScheduleError(f"{expression!r} is not a cron expression: {exc}") from None


def runs_after(expression: str, timezone: str | None, start: dt.datetime, count: int) -> list:
    """The next `count` runs after `start`, in the expression's timezone; ScheduleError if none."""
    ticks = _iterator(expression, start.astimezone(zone(timezone)))
    horizon = start + dt.timedelta(days=366 * LOOKAHEAD_YEARS)
    runs = []
    for _ in range(count):
        try:
            tick = ticks.get_next(dt.datetime)
        except CroniterError:
            break
        if tick > horizon:
            break
        runs.append(tick)
    if not runs:
        raise ScheduleError(
            f"{expression!r} has no run in the next {LOOKAHEAD_YEARS} years (e.g. a day that "
            "its month never has)."
        )
    return runs


def run_before(expression: str, timezone: str | None, start: dt.datetime) -> dt.datetime | None:
    """The last run at or before `start` within the lookahead, in UTC; None if there is none."""
    # Ticks fall on whole minutes; one second past `start` makes a tick at `start` itself count.
    local = start.astimezone(zone(timezone)).replace(microsecond=0) + dt.timedelta(seconds=1)
    try:
        return _iterator(expression, local).get_prev(dt.datetime).astimezone(dt.UTC)
    except CroniterError:
        return None
