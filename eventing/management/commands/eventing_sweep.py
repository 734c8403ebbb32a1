"""`manage.py eventing_sweep`: run the sweeper by hand, once or in a loop (without beat)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from eventing.conf import settings
from eventing.maintenance.sweeper import pending, sweep


def describe(report: dict[str, int]) -> str:
    """`released=0 enqueued=3` style summary of a sweep report."""
    return " ".join(f"{key}={value}" for key, value in report.items())


class Command(BaseCommand):
    help = (
        "Run the sweeper: return expired leases to staged and send due events whose broker "
        "message was never sent or was lost. Beat runs this every EVENTING['SWEEP_INTERVAL_S']; "
        "use this command to catch up by hand, to see what is pending (--dry-run), or to run "
        "the sweeper without beat (--loop)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what one sweep would release and send now (the same rules, queue lag "
            "included); change nothing.",
        )
        parser.add_argument(
            "--loop",
            action="store_true",
            help="Keep sweeping every --interval seconds until interrupted (Ctrl-C).",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between passes with --loop (default: EVENTING['SWEEP_INTERVAL_S']).",
        )
        parser.add_argument(
            "--until-idle",
            action="store_true",
            help="Repeat passes until one finds nothing to do (catching up after an outage).",
        )

    def handle(
        self, *args, dry_run: bool, loop: bool, interval: float | None, until_idle: bool, **options
    ) -> None:
        if dry_run and (loop or until_idle):
            raise CommandError("--dry-run cannot be combined with --loop or --until-idle.")
        if interval is not None and interval <= 0:
            raise CommandError("--interval must be a positive number of seconds.")
        if dry_run:
            self.stdout.write(f"Would sweep: {describe(pending(timezone.now()))}")
            return
        pause = interval if interval is not None else float(settings.SWEEP_INTERVAL_S)
        passes = 0
        try:
            while True:
                report = sweep()
                passes += 1
                busy = any(report.values())
                if busy or not (loop or until_idle) or options["verbosity"] > 1:
                    self.stdout.write(f"Sweep {passes}: {describe(report)}")
                if until_idle and not busy:
                    break
                if not (loop or until_idle):
                    break
                if loop:
                    time.sleep(pause)  # the schedule between passes, not synchronisation
        except KeyboardInterrupt:
            self.stdout.write(f"Stopped after {passes} pass(es).")
            return
        if passes > 1:
            self.stdout.write(self.style.SUCCESS(f"Done after {passes} passes."))
