"""`manage.py eventing_backfill <trigger>`: send existing rows to a DB trigger as MANUAL events."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from eventing.capture import backfill
from triggers.models import Trigger


class Command(BaseCommand):
    """Every row of the trigger's model (or those matching --filter), batch by batch."""

    help = (
        "Send existing rows of a DB trigger's model to it as MANUAL events (the row as `new`), "
        "in batches committed one by one. Rerun with --backfill-id to resume: rows that "
        "backfill already recorded are skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("trigger", help="Name of a DB trigger.")
        parser.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help="Only rows matching this Django lookup (repeatable; field__in=a,b for lists).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=backfill.DEFAULT_BATCH_SIZE,
            help=f"Rows per committed batch (1 to {backfill.MAX_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--backfill-id",
            default=None,
            help="Resume (or repeat idempotently) the backfill with this id.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count the rows; record nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        trigger = Trigger.objects.filter(name=options["trigger"]).first()
        if trigger is None:
            raise CommandError(f"No trigger named {options['trigger']!r}.")
        if not 1 <= options["batch_size"] <= backfill.MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size: 1 to {backfill.MAX_BATCH_SIZE}.")
        try:
            rows = backfill.rows_for(trigger, backfill.parse_filters(options["filter"]))
            total = rows.count()
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        if options["dry_run"]:
            self.stdout.write(f"{total} rows would be sent to {trigger.name} (dry run).")
            return
        backfill_id = options["backfill_id"] or backfill.new_backfill_id()
        self.stdout.write(f"Backfill {backfill_id}: {total} rows to {trigger.name}.")

        def report(totals: backfill.Totals, batch: backfill.BatchDone) -> None:
            done = totals.sent + totals.skipped
            self.stdout.write(
                f"  {done}/{totals.total} rows ({totals.sent} sent, {totals.skipped} already "
                f"sent), up to pk {batch.last_pk}"
            )

        totals = backfill.backfill(
            trigger,
            rows,
            backfill_id=backfill_id,
            batch_size=options["batch_size"],
            on_batch=report,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Backfill {totals.backfill_id}: {totals.sent} MANUAL events recorded, "
                f"{totals.skipped} rows skipped (already sent by this backfill)."
            )
        )
