"""`manage.py eventing_redeliver`: stage finished events again, chosen by trigger, status, age."""

from __future__ import annotations

import datetime as dt
import re

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from eventing.dispatch.operations import REPLAY_BATCH_SIZE, Replay, replay
from eventing.models import FINAL_STATUSES
from triggers.models import Trigger

BATCH_SIZE = REPLAY_BATCH_SIZE
DURATION_RE = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>[smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: dt.datetime) -> dt.datetime:
    """A point in time from `2026-11-27`, `2026-11-27T10:00:00Z` or an age like `6h`, `3d`."""
    text = value.strip()
    match = DURATION_RE.match(text)
    if match:
        return now - dt.timedelta(**{UNITS[match["unit"]]: float(match["amount"])})
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            if day is not None:
                moment = dt.datetime.combine(day, dt.time.min)
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(
            f"--since: cannot read {value!r}; give a date (2026-11-27), a time "
            "(2026-11-27T10:00:00Z) or an age (30m, 6h, 3d, 2w)."
        )
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return moment


def parse_statuses(value: str) -> list[str]:
    """Comma-separated final statuses; anything else is refused by name."""
    statuses = [item.strip() for item in value.split(",") if item.strip()]
    allowed = [str(status) for status in FINAL_STATUSES]
    wrong = [status for status in statuses if status not in allowed]
    if wrong or not statuses:
        raise CommandError(
            f"--status: {', '.join(wrong) or 'nothing given'} cannot be redelivered; choose "
            f"from {', '.join(allowed)} (staged and processing events are still on their way)."
        )
    return statuses


class Command(BaseCommand):
    help = (
        "Deliver finished events again (fresh retry budget; earlier invocations are kept). "
        "Choose them by --trigger, --status (default: failed) and --since; --dry-run shows "
        "how many would go. Example: eventing_redeliver --trigger orders_hook --since 6h"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--trigger",
            action="append",
            default=[],
            metavar="NAME",
            help="Only events of this trigger (repeat for several). Default: every trigger.",
        )
        parser.add_argument(
            "--status",
            default="failed",
            help="Comma-separated statuses to redeliver: failed, processed, cancelled "
            "(default: failed).",
        )
        parser.add_argument(
            "--since",
            help="Only events created at or after this: a date, an ISO time, or an age such "
            "as 30m, 6h, 3d.",
        )
        parser.add_argument(
            "--until", help="Only events created before this (same forms as --since)."
        )
        parser.add_argument(
            "--type",
            action="append",
            default=[],
            metavar="TYPE",
            help="Only events of this type (repeat for several).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count the matching events per trigger; change nothing.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"Events staged per transaction (default {BATCH_SIZE}).",
        )

    def handle(
        self,
        *args,
        trigger: list[str],
        status: str,
        since: str | None,
        until: str | None,
        type: list[str],
        dry_run: bool,
        batch_size: int,
        **options,
    ) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        now = timezone.now()
        if trigger:
            known = set(Trigger.objects.filter(name__in=trigger).values_list("name", flat=True))
            unknown = sorted(set(trigger) - known)
            if unknown:
                raise CommandError(f"--trigger: no trigger named {', '.join(unknown)}.")
        window = Replay(
            since=parse_since(since, now) if since else None,
            until=parse_since(until, now) if until else None,
            statuses=tuple(parse_statuses(status)),
            triggers=tuple(trigger),
            types=tuple(type),
        )
        if dry_run:
            self.report_dry_run(window)
            return
        total = window.events().count()
        if not total:
            self.stdout.write("No events match; nothing redelivered.")
            return
        self.stdout.write(f"Redelivering {total} event(s)…")
        done = replay(
            window,
            batch_size=batch_size,
            progress=lambda done: self.stdout.write(f"  {done}/{total}"),
        )
        self.stdout.write(self.style.SUCCESS(f"Redelivered {done} event(s)."))

    def report_dry_run(self, window: Replay) -> None:
        """Print how many events each trigger would get again."""
        per_trigger = window.count_by_trigger()
        for name, count in per_trigger.items():
            self.stdout.write(f"  {name}: {count}")
        total = sum(per_trigger.values())
        self.stdout.write(f"Would redeliver {total} event(s) (dry run; nothing changed).")
