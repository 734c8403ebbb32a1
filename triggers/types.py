"""Event type names: the built-in DB and FILE types and the rule for custom names."""

import re

DB_INSERT = "DB_INSERT"
DB_UPDATE = "DB_UPDATE"
DB_DELETE = "DB_DELETE"
FILE_CREATE = "FILE_CREATE"
FILE_DELETE = "FILE_DELETE"
# Fired by the clock: one event per tick of the trigger's cron expression.
CRON = "CRON"
# Rows sent to a DB trigger by hand or by a backfill (eventing.capture.backfill): the type of
# their events, never a trigger's.
MANUAL = "MANUAL"

DB_TYPES = (DB_INSERT, DB_UPDATE, DB_DELETE)
FILE_TYPES = (FILE_CREATE, FILE_DELETE)
BUILTIN_TYPES = DB_TYPES + FILE_TYPES
RESERVED_PREFIXES = ("DB_", "FILE_")

# \Z, not $: "$" also matches before a final newline, so "name\n" would pass.
NAME_RE = re.compile(r"^[A-Za-z0-9_]+\Z")


def is_db_type(event_type: str) -> bool:
    """Whether `event_type` is one of DB_INSERT / DB_UPDATE / DB_DELETE."""
    return event_type in DB_TYPES


def is_file_type(event_type: str) -> bool:
    """Whether `event_type` is FILE_CREATE or FILE_DELETE."""
    return event_type in FILE_TYPES


def is_custom_type(event_type: str) -> bool:
    """Whether `event_type` is a valid custom type name (not reserved, not CRON or MANUAL)."""
    return (
        bool(NAME_RE.match(event_type))
        and not event_type.upper().startswith(RESERVED_PREFIXES)
        and event_type.upper() not in (CRON, MANUAL)
    )


def dlq_type(trigger_name: str) -> str:
    """The custom event type emitted when `trigger_name` gives up on an event."""
    return f"dlq_{trigger_name}"
