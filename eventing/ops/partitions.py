"""Time-range partitions of event_logs and invocation_logs on PostgreSQL (opt-in).

`eventing_partitions enable` turns both tables into range-partitioned ones (event_logs by
created_at, invocation_logs by invoked_at): the existing table becomes the partition of
everything before the cut-over, new partitions follow one interval each, a default partition
catches anything past the newest, and beat keeps AHEAD of partitions ready. Retention then drops
a whole partition (a catalog change) instead of deleting its rows one by one.

What partitioning changes in the schema (PostgreSQL requires the partition key in every unique
key of a partitioned table):
- the primary keys become (id, created_at) and (id, invoked_at); ids stay unique by
  construction (UUIDs, one identity sequence);
- the foreign key from invocation_logs to event_logs is dropped (it would need the partition
  key on both sides): the ORM still deletes invocations with their event, and retention drops an
  invocation partition only once every event partition it could refer to is gone;
- the idempotency unique index is kept per partition: a key is looked up across all partitions
  before recording, as before; only two concurrent first uses of one key on either side of a
  partition boundary could both record.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db import connections, transaction
from django.utils import timezone

from eventing.conf import settings
from eventing.models import UNFINISHED_STATUSES

# Partitioned table → its partition key.
TABLES = {"event_logs": "created_at", "invocation_logs": "invoked_at"}
BEFORE = "_p_before"
DEFAULT = "_p_default"
AHEAD = dt.timedelta(days=7)
INTERVAL = dt.timedelta(days=1)
# The switch waits this long for a lock behind running transactions, then gives up (and is
# tried again) rather than queue every writer behind it.
LOCK_TIMEOUT = "5s"
BOUND_RE = re.compile(r"FROM \((MINVALUE|'[^']+')\) TO \((MAXVALUE|'[^']+')\)", re.IGNORECASE)
IDEMPOTENCY_INDEX = (
    "CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {table} (idempotency_key, type, trigger_name) "
    "WHERE idempotency_key IS NOT NULL"
)


class PartitionError(Exception):
    """Partitions cannot be set up or kept here (not PostgreSQL, or a step failed)."""


@dataclass(frozen=True)
class Partition:
    """One partition: its name and range (None: unbounded; both None: the default one)."""

    name: str
    lower: dt.datetime | None
    upper: dt.datetime | None
    default: bool = False


def connection():
    """The connection to the database holding the event tables."""
    return connections[settings.DATABASE]


def is_partitioned(table: str = "event_logs") -> bool:
    """Whether `table` is a partitioned table (never on SQLite)."""
    conn = connection()
    if conn.vendor != "postgresql":
        return False
    with conn.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def parse_bound(text: str) -> dt.datetime | None:
    """A partition bound from pg_get_expr: None for MINVALUE / MAXVALUE."""
    if text.upper() in ("MINVALUE", "MAXVALUE"):
        return None
    return dt.datetime.fromisoformat(text.strip("'"))


def partitions(table: str) -> list[Partition]:
    """The partitions of `table`, oldest first, the default one last."""
    with connection().cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits AS i "
            "JOIN pg_class AS c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
            [table],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = BOUND_RE.search(bound or "")
        if match is None:
            found.append(Partition(name, None, None, default=True))
        else:
            found.append(Partition(name, parse_bound(match[1]), parse_bound(match[2])))
    never = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(found, key=lambda p: (p.default, p.lower or never))


def partition_name(table: str, lower: dt.datetime) -> str:
    """The name of the partition of `table` starting at `lower` (UTC)."""
    return f"{table}_p{lower.astimezone(dt.UTC):%Y%m%d%H%M}"


def start_of_day(moment: dt.datetime) -> dt.datetime:
    """Midnight UTC at or before `moment`."""
    return moment.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def create_partition(cursor, table: str, lower: dt.datetime, upper: dt.datetime) -> str:
    """Create the partition [lower, upper) of `table` (with event_logs' idempotency index)."""
    name = partition_name(table, lower)
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} FOR VALUES FROM (%s) TO (%s)",
        [lower, upper],
    )
    if table == "event_logs":
        cursor.execute(IDEMPOTENCY_INDEX.format(index=f"{name}_idem", table=name))
    return name


def create_ahead(now: dt.datetime | None = None, ahead: dt.timedelta = AHEAD) -> list[str]:
    """Create the partitions missing until `now + ahead` (beat runs this hourly); the new
    ones are as long as the newest one. Returns the names created."""
    now = now or timezone.now()
    created = []
    for table in TABLES:
        if not is_partitioned(table):
            continue
        ranged = [p for p in partitions(table) if not p.default and p.upper is not None]
        if not ranged:
            raise PartitionError(f"{table} is partitioned but has no range partition")
        newest = ranged[-1]
        width = newest.upper - newest.lower if newest.lower else INTERVAL
        upper = newest.upper
        with transaction.atomic(using=settings.DATABASE), connection().cursor() as cursor:
            while upper < now + ahead:
                created.append(create_partition(cursor, table, upper, upper + width))
                upper += width
    return created


def retained_for() -> dt.timedelta | None:
    """How long the longest-kept final status is kept (None: one is kept forever)."""
    retention = settings.RETENTION or {}
    days = [retention.get(status) for status in ("processed", "failed", "cancelled")]
    if any(d is None for d in days):
        return None
    return dt.timedelta(days=max(days))


def holds_unfinished(cursor, name: str) -> bool:
    """Whether the event partition `name` still holds an event not yet finished."""
    cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM {name} WHERE status = ANY(%s))", [list(UNFINISHED_STATUSES)]
    )
    return cursor.fetchone()[0]


def drop_expired(now: dt.datetime | None = None) -> dict[str, int]:
    """Drop every partition whose whole range is past retention: event partitions holding no
    unfinished event, then invocation partitions older than every event partition kept.
    Returns the rows each dropped partition held, by name."""
    keep = retained_for()
    if keep is None or not is_partitioned("event_logs"):
        return {}
    cutoff = (now or timezone.now()) - keep
    dropped: dict[str, int] = {}
    with connection().cursor() as cursor:
        kept_events = []
        for part in partitions("event_logs"):
            expired = not part.default and part.upper is not None and part.upper <= cutoff
            if expired and not holds_unfinished(cursor, part.name):
                delete_late_invocations(cursor, part)
                dropped[part.name] = drop_partition(cursor, "event_logs", part.name)
            else:
                kept_events.append(part)
        kept_ranges = [p for p in kept_events if not p.default]
        if any(p.lower is None for p in kept_ranges):
            return dropped  # the partition of everything before the cut-over is still kept
        oldest_kept = min((p.lower for p in kept_ranges), default=None)
        for part in partitions("invocation_logs"):
            if part.default or part.upper is None or part.upper > cutoff:
                continue
            if oldest_kept is None or part.upper <= oldest_kept:
                dropped[part.name] = drop_partition(cursor, "invocation_logs", part.name)
    return dropped


def delete_late_invocations(cursor, part: Partition) -> None:
    """Delete the invocations of `part`'s events made after its range ended.

    They live in younger invocation partitions, which this drop does not reach: left there,
    they would name events that no longer exist (and refuse `disable()`'s foreign key). An
    event's attempts cluster right after it, so these are few; earlier ones go with the
    invocation partitions of the same days.
    """
    cursor.execute(
        f"DELETE FROM invocation_logs AS i USING {part.name} AS e "
        "WHERE i.event_id = e.id AND i.invoked_at >= %s",
        [part.upper],
    )


def drop_partition(cursor, table: str, name: str) -> int:
    """Detach and drop one partition; returns how many rows it held (its estimate)."""
    cursor.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE relname = %s", [name])
    rows = cursor.fetchone()[0]
    with transaction.atomic(using=settings.DATABASE):
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
    return rows


def status() -> dict[str, list[Partition]]:
    """The partitions of each partitioned event table (empty: not partitioned)."""
    return {table: partitions(table) if is_partitioned(table) else [] for table in TABLES}


def enable(
    now: dt.datetime | None = None,
    *,
    interval: dt.timedelta = INTERVAL,
    ahead: dt.timedelta = AHEAD,
    start: dt.datetime | None = None,
) -> list[str]:
    """Partition event_logs and invocation_logs: the existing rows stay where they are, as the
    partition of everything before the cut-over (`start`, default: the next midnight UTC).

    Long steps (the unique index with the partition key, the check that proves the existing
    rows lie before the cut-over) run first without blocking writes; the switch itself is one
    short transaction. Returns what was done, a line per step.
    """
    conn = connection()
    if conn.vendor != "postgresql":
        raise PartitionError("Partitions need PostgreSQL; this database is " + conn.vendor)
    if is_partitioned("event_logs") and is_partitioned("invocation_logs"):
        return ["already partitioned"]
    now = now or timezone.now()
    cutover = start or start_of_day(now) + dt.timedelta(days=1)
    done = []
    for table, key in TABLES.items():
        done += prepare(table, key, cutover)
    try:
        with transaction.atomic(using=settings.DATABASE), conn.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cursor.execute("LOCK TABLE event_logs, invocation_logs IN ACCESS EXCLUSIVE MODE")
            done += drop_foreign_keys_into(cursor, "event_logs")
            for table, key in TABLES.items():
                done += switch(cursor, table, key, cutover, interval, now + ahead)
    except Exception:
        # The check would refuse rows past the cut-over: never leave it on an unpartitioned table.
        with conn.cursor() as cursor:
            for table in TABLES:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_before")
        raise
    return done


def prepare(table: str, key: str, cutover: dt.datetime) -> list[str]:
    """Build what the switch needs without blocking writes: a unique index on (id, key) and
    a validated check that every row lies before the cut-over."""
    with connection().cursor() as cursor:
        cursor.execute(
            f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {table}_id_key ON {table} (id, {key})"
        )
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_before")
        cursor.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_before CHECK ({key} < %s) NOT VALID",
            [cutover],
        )
        # VALIDATE takes a lock that lets writes go on while it reads the table.
        cursor.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {table}_before")
    return [f"{table}: unique index on (id, {key}) and check {key} < {cutover:%Y-%m-%d %H:%M}"]


def drop_foreign_keys_into(cursor, table: str) -> list[str]:
    """Drop the foreign keys referencing `table` (a partitioned table's keys include its
    partition key, which the referencing rows do not hold)."""
    cursor.execute(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint "
        "WHERE contype = 'f' AND confrelid = to_regclass(%s)",
        [table],
    )
    done = []
    for referencing, name in cursor.fetchall():
        cursor.execute(f"ALTER TABLE {referencing} DROP CONSTRAINT {name}")
        done.append(f"{referencing}: dropped foreign key {name} into {table}")
    return done


def switch(
    cursor, table: str, key: str, cutover: dt.datetime, interval: dt.timedelta, until: dt.datetime
) -> list[str]:
    """Inside the switch transaction: the table becomes the partition before the cut-over of
    a new partitioned table of the same name, with partitions from the cut-over on."""
    before = f"{table}{BEFORE}"
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid), x.indisunique FROM pg_index AS x "
        "JOIN pg_class AS i ON i.oid = x.indexrelid WHERE x.indrelid = to_regclass(%s)",
        [table],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE contype = 'p' AND conrelid = to_regclass(%s)",
        [table],
    )
    (primary_key,) = cursor.fetchone()
    cursor.execute(
        "SELECT attidentity FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = 'id'",
        [table],
    )
    identity = cursor.fetchone()[0] != ""
    cursor.execute(f"ALTER TABLE {table} RENAME TO {before}")
    for name, _, _ in indexes:
        if name not in (primary_key, f"{table}_id_key"):
            cursor.execute(f"ALTER INDEX {name} RENAME TO {before_name(name)}")
    cursor.execute(
        f"CREATE TABLE {table} (LIKE {before} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        f"INCLUDING STORAGE) PARTITION BY RANGE ({key})"
    )
    cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_before")
    if identity:
        # One sequence for every partition, going on from the old table's.
        cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {before}")
        next_id = cursor.fetchone()[0]
        cursor.execute(f"SELECT nextval(pg_get_serial_sequence('{before}', 'id'))")
        next_id = max(next_id, cursor.fetchone()[0] + 1)
        cursor.execute(f"ALTER TABLE {before} ALTER COLUMN id DROP IDENTITY")
        cursor.execute(
            f"ALTER TABLE {table} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY "
            f"(START WITH {next_id})"
        )
    cursor.execute(f"ALTER TABLE {before} DROP CONSTRAINT {primary_key}")
    cursor.execute(
        f"ALTER TABLE {before} ADD CONSTRAINT {before}_pkey PRIMARY KEY USING INDEX {table}_id_key"
    )
    cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (id, {key})")
    cursor.execute(
        f"ALTER TABLE {table} ATTACH PARTITION {before} FOR VALUES FROM (MINVALUE) TO (%s)",
        [cutover],
    )
    lower, created = cutover, []
    while lower < until:
        created.append(create_partition(cursor, table, lower, lower + interval))
        lower += interval
    cursor.execute(f"CREATE TABLE {table}{DEFAULT} PARTITION OF {table} DEFAULT")
    if table == "event_logs":
        cursor.execute(
            IDEMPOTENCY_INDEX.format(index=f"{table}{DEFAULT}_idem", table=f"{table}{DEFAULT}")
        )
    for _name, definition, unique in indexes:
        if unique:
            continue  # the primary key (re-made above) and the per-partition idempotency index
        # On the parent: attaches the old table's index of the same definition, builds the
        # others on the new, empty partitions.
        cursor.execute(definition)
    return [
        f"{table}: partitioned by {key}; {before} holds the rows before the cut-over, "
        f"{len(created)} partition(s) from it on, and {table}{DEFAULT}"
    ]


def before_name(index: str) -> str:
    """The name an index of the old table takes once it is the partition before the cut-over."""
    return f"{index[:50]}_before"


def disable() -> list[str]:
    """Undo `enable`: copy every partition's rows back into plain tables with the original keys
    (a full rewrite under lock: for small tables, such as a test database's)."""
    if not (is_partitioned("event_logs") or is_partitioned("invocation_logs")):
        return ["not partitioned"]
    done = []
    with transaction.atomic(using=settings.DATABASE), connection().cursor() as cursor:
        cursor.execute("LOCK TABLE event_logs, invocation_logs IN ACCESS EXCLUSIVE MODE")
        for table, key in TABLES.items():
            cursor.execute(
                "SELECT pg_get_indexdef(x.indexrelid) FROM pg_index AS x WHERE x.indrelid = "
                "to_regclass(%s) AND NOT x.indisprimary",
                [table],
            )
            definitions = [row[0] for row in cursor.fetchall()]
            cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_partitioned")
            cursor.execute(
                f"CREATE TABLE {table} (LIKE {table}_partitioned INCLUDING DEFAULTS "
                f"INCLUDING CONSTRAINTS INCLUDING STORAGE)"
            )
            identity = table == "invocation_logs"
            if identity:
                cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}_partitioned")
                next_id = cursor.fetchone()[0]
            cursor.execute(f"INSERT INTO {table} SELECT * FROM {table}_partitioned")
            cursor.execute(f"DROP TABLE {table}_partitioned")
            if identity:
                cursor.execute(
                    f"ALTER TABLE {table} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY "
                    f"(START WITH {next_id})"
                )
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (id)")
            for definition in definitions:
                cursor.execute(definition.replace(" ON ONLY ", " ON "))
            if table == "event_logs":
                cursor.execute(
                    "CREATE UNIQUE INDEX event_logs_idempotency_unique ON event_logs "
                    "(idempotency_key, type, trigger_name) WHERE idempotency_key IS NOT NULL"
                )
            done.append(f"{table}: a plain table again ({key} partitions merged)")
        # Partitions drop without a foreign key: invocations whose event went with an older
        # partition (before late ones were deleted with it) must go before the key returns.
        cursor.execute(
            "DELETE FROM invocation_logs AS i WHERE NOT EXISTS "
            "(SELECT 1 FROM event_logs AS e WHERE e.id = i.event_id)"
        )
        cursor.execute(
            "ALTER TABLE invocation_logs ADD CONSTRAINT invocation_logs_event_id_fk_event_logs_id "
            "FOREIGN KEY (event_id) REFERENCES event_logs (id) DEFERRABLE INITIALLY DEFERRED"
        )
    return done
