"""`manage.py eventing_cleanup`: delete finished events past EVENTING["RETENTION"]."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from eventing.conf import settings
from eventing.ops.retention import BATCH_SIZE, delete_expired


class Command(BaseCommand):
    """Delete processed, failed and cancelled events (and their invocations) past retention."""

    help = (
        "Delete processed, failed and cancelled events older than EVENTING['RETENTION'] days, "
        "with their invocation logs, in small transactions so concurrent emits never wait "
        "long. Staged, processing and intent events are never deleted. Celery beat runs the "
        "same cleanup daily (task eventing.cleanup)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count the events that would be deleted, per status; delete nothing.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"Events deleted per transaction (default {BATCH_SIZE}).",
        )

    def handle(self, *args, dry_run: bool = False, batch_size: int = BATCH_SIZE, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more.")
        self.verbosity = options.get("verbosity", 1)
        retention = settings.RETENTION or {}
        for status, days in retention.items():
            kept = "kept forever" if days is None else f"kept {days} days"
            self.log(f"{status}: {kept}", level=2)
        report = delete_expired(dry_run=dry_run, batch_size=batch_size, progress=self.progress)
        verb = "would delete" if dry_run else "deleted"
        if "partitions_dropped" in report:
            self.stdout.write(f"dropped {report.pop('partitions_dropped')} partition(s)")
        for status, count in report.items():
            self.stdout.write(f"{status}: {verb} {count} event(s)")
        total = sum(report.values())
        summary = f"{'Dry run: ' if dry_run else ''}{total} event(s) {verb} in total."
        self.stdout.write(self.style.SUCCESS(summary))

    def progress(self, status: str, deleted: int) -> None:
        """Called after each batch: a running count, so a long cleanup shows it is alive."""
        self.log(f"{status}: {deleted} deleted so far…", level=1)

    def log(self, message: str, *, level: int) -> None:
        if self.verbosity >= level:
            self.stdout.write(message)
