"""`eventing_capture status|sync|drop`: the PostgreSQL trigger functions of database capture."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from eventing.capture import database as capture_db
from eventing.conf import settings


class Command(BaseCommand):
    """Show, bring in step, or remove the trigger functions that capture DB events."""

    help = (
        "Database capture (EVENTING['CAPTURE'] = 'database'): `status` lists each table's "
        "trigger function and whether it matches the triggers (exit status 1 if any does not); "
        "`sync` installs, replaces and drops functions until they do (in signal mode it drops "
        "them all); `drop` removes every capture function and trigger whatever the mode."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("status", "sync", "drop"))
        parser.add_argument(
            "--database",
            default=None,
            help="Alias of the events database (default: EVENTING['DATABASE']).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        db = options["database"] or settings.DATABASE
        if connections[db].vendor != "postgresql":
            raise CommandError(
                f"Database capture needs PostgreSQL; {db!r} is {connections[db].vendor}. "
                "Signals capture DB events there."
            )
        if options["action"] == "status":
            self.status(db)
            return
        work = capture_db.sync if options["action"] == "sync" else capture_db.drop
        actions = work(db)
        for line in actions:
            self.stdout.write(line)
        self.stdout.write(f"{len(actions)} change(s); mode: {capture_db.capture_mode()}.")

    def status(self, db: str) -> None:
        """A line per table and event kind, then the captures waiting; exit 1 unless all are ok."""
        lines = capture_db.capture_status(db)
        self.stdout.write(f"mode: {capture_db.capture_mode()}")
        if not lines:
            self.stdout.write("No capture functions installed or needed.")
        for line in lines:
            triggers = ", ".join(line.triggers) or "-"
            text = (
                f"{line.table:<30} {line.kind or '-':<7} {line.state:<9} "
                f"{line.function or '-'}  triggers: {triggers}"
            )
            if line.detail:
                text += f"  ({line.detail})"
            self.stdout.write(text)
        count, age = capture_db.pending_captures(db)
        waiting = f"captures waiting to become events: {count}"
        if count:
            waiting += f" (oldest {age:.1f} s; the listener, or the sweeper, expands them)"
        self.stdout.write(waiting)
        if any(not line.ok for line in lines):
            raise CommandError("Some capture functions do not match; run `eventing_capture sync`.")
