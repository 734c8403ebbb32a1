"""`manage.py eventing_reconcile <trigger> --since T`: rows changed since T without an event of
the trigger, counted (dry run, the default) or sent as MANUAL events with --yes."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from eventing.capture import backfill, reconcile
from eventing.management.commands.eventing_redeliver import parse_since
from triggers.models import Trigger


class Command(BaseCommand):
    """Find what signal capture missed (update(), bulk_create, raw SQL) and send it."""

    help = (
        "Find the rows of a DB trigger's model changed since --since (by its auto_now field, "
        "or --field) that have no event of the trigger, and send them as MANUAL events. A dry "
        "run unless --yes is given. Example: eventing_reconcile orders_hook --since 6h --yes"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("trigger", help="Name of a DB_INSERT or DB_UPDATE trigger.")
        parser.add_argument(
            "--since",
            required=True,
            help="Rows changed at or after this: a date, a time (2026-11-27T10:00:00Z) or an "
            "age (30m, 6h, 3d).",
        )
        parser.add_argument(
            "--field",
            default=None,
            help="The date-time field that says when a row changed (default: the model's "
            "auto_now field; auto_now_add first for a DB_INSERT trigger).",
        )
        parser.add_argument(
            "--slack",
            type=float,
            default=reconcile.DEFAULT_SLACK_S,
            help="Seconds an event may be recorded before the row's timestamp and still count "
            "as its event (clocks of different processes).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=backfill.DEFAULT_BATCH_SIZE,
            help=f"Rows read (and sent, each batch committed) at a time (1 to "
            f"{backfill.MAX_BATCH_SIZE}).",
        )
        parser.add_argument("--yes", action="store_true", help="Send the rows found.")
        parser.add_argument("--dry-run", action="store_true", help="Only count them (the default).")

    def handle(self, *args: Any, **options: Any) -> None:
        trigger = Trigger.objects.filter(name=options["trigger"]).first()
        if trigger is None:
            raise CommandError(f"No trigger named {options['trigger']!r}.")
        if options["yes"] and options["dry_run"]:
            raise CommandError("--yes sends, --dry-run only counts: give one of them.")
        if not 1 <= options["batch_size"] <= backfill.MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size: 1 to {backfill.MAX_BATCH_SIZE}.")
        if options["slack"] < 0:
            raise CommandError("--slack: a number of seconds, 0 or more.")
        since = parse_since(options["since"], timezone.now())
        send = options["yes"]
        try:
            result = reconcile.reconcile(
                trigger,
                since,
                field_name=options["field"],
                send=send,
                slack_s=options["slack"],
                batch_size=options["batch_size"],
                on_batch=self.progress if send else None,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        sample = ", ".join(str(pk) for pk in result.sample)
        if result.missing > len(result.sample):
            sample += ", …"
        found = f"{result.missing} of {result.checked} rows changed since {since.isoformat()}"
        if not send:
            self.stdout.write(
                f"{found} have no event of {trigger.name}"
                + (
                    f" (pk {sample}{', …' if result.missing > len(result.sample) else ''})"
                    if sample
                    else ""
                )
                + ". Dry run: nothing sent; add --yes to send them as MANUAL events."
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"{found} had no event of {trigger.name}: {result.sent} MANUAL events recorded "
                f"(backfill id {result.backfill_id})."
            )
        )

    def progress(self, result: reconcile.Reconciled) -> None:
        """One line per batch while sending."""
        self.stdout.write(f"  {result.checked} rows checked, {result.sent} sent")
