"""`manage.py eventing_partitions enable|status|ahead`: time-range partitions of event tables."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from eventing.ops import partitions


class Command(BaseCommand):
    """Partition event_logs and invocation_logs by time (PostgreSQL), show or extend them."""

    help = (
        "enable: turn event_logs and invocation_logs into time-range partitioned tables "
        "(PostgreSQL; the existing rows become the partition before the cut-over, without "
        "copying them); retention (eventing_cleanup) then drops whole partitions. status: list "
        "the partitions. ahead: create the partitions of the coming days now (beat does it "
        "hourly). See docs/operations.md, 'Partitions'."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=("enable", "status", "ahead"))
        parser.add_argument(
            "--interval-days",
            type=int,
            default=partitions.INTERVAL.days,
            help="enable: days per partition (default %(default)s).",
        )
        parser.add_argument(
            "--ahead-days",
            type=int,
            default=partitions.AHEAD.days,
            help="enable, ahead: days of partitions kept ready (default %(default)s).",
        )

    def handle(self, *args, action: str, interval_days: int, ahead_days: int, **options):
        if interval_days < 1:
            raise CommandError("--interval-days must be 1 or more.")
        if ahead_days < 1:
            raise CommandError("--ahead-days must be 1 or more.")
        ahead = dt.timedelta(days=ahead_days)
        try:
            if action == "enable":
                interval = dt.timedelta(days=interval_days)
                for line in partitions.enable(interval=interval, ahead=ahead):
                    self.stdout.write(line)
            elif action == "ahead":
                created = partitions.create_ahead(ahead=ahead)
                self.stdout.write(f"created {len(created)} partition(s): {', '.join(created)}")
            else:
                self.show_status()
        except partitions.PartitionError as exc:
            raise CommandError(str(exc)) from exc

    def show_status(self) -> None:
        """Each table's partitions with their ranges, or that it is not partitioned."""
        for table, parts in partitions.status().items():
            if not parts:
                self.stdout.write(f"{table}: not partitioned")
                continue
            self.stdout.write(f"{table}: {len(parts)} partition(s)")
            for part in parts:
                span = "default" if part.default else f"{part.lower or '…'} → {part.upper or '…'}"
                self.stdout.write(f"  {part.name}: {span}")
