"""Captures into event rows: the expansion passes the listener and sweeper run."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import connections, transaction

from eventing.capture.database.expand_function import call_sql
from eventing.capture.database.sql import ident
from eventing.conf import settings
from eventing.models import EventCapture

logger = logging.getLogger(__name__)

# Captures one expansion pass takes (one transaction).
CAPTURES_PER_PASS = 500

# --- captures into events ---------------------------------------------------------------------


def expand_call(connection) -> str:
    """The statement of one pass, kept per connection (it names the function's schema)."""
    statement = getattr(connection, "eventing_expand_call", None)
    if statement is None:
        statement = connection.eventing_expand_call = call_sql(connection)
    return statement


@dataclass
class Expanded:
    """What one expansion pass did."""

    captures: int = 0
    batch_ids: list[str] = field(default_factory=list)
    # (id, deliver_at, trigger_id) of the rows marked sent, to publish after commit.
    sent: list[tuple] = field(default_factory=list)
    # The pass stopped at its limit of captures or of bytes: another may find more.
    more: bool = False


def expand_captures(
    using: str | None = None,
    *,
    limit: int = CAPTURES_PER_PASS,
    sent_at: dt.datetime | None = None,
    sent_until: dt.datetime | None = None,
) -> Expanded:
    """Turn up to `limit` captures into event rows and delete them, in one transaction.

    A pass also stops at expand_function.BYTES_PER_PASS bytes of captured rows (a larger
    capture goes alone), so expanding a statement of any size holds a bounded amount of memory.

    Captures are locked with SKIP LOCKED, so the listener, sweepers and syncs running at once
    each take different ones; event rows and the deletion commit together, so a capture is
    expanded exactly once even if the process dies at any point. A capture whose expander
    fails (its table altered since; run `eventing_capture sync`) or is gone is kept. Given
    `sent_at`, the new rows due by `sent_until` whose trigger may deliver are marked sent in
    the same statement (the listener publishes them after commit).
    """
    db = using or settings.DATABASE
    connection = connections[db]
    done = Expanded()
    if connection.vendor != "postgresql":
        return done
    with transaction.atomic(using=db, savepoint=False), connection.cursor() as cursor:
        # One statement (expand_function.definition): the listener pays one
        # round trip per pass, however many tables its captures come from.
        cursor.execute(expand_call(connection), [limit, sent_at, sent_until])
        done.captures, batch_ids, failures, ids, due, trigger_ids, more = cursor.fetchone()
    done.more = bool(more)
    done.batch_ids = [str(batch) for batch in batch_ids]
    done.sent = list(zip(ids or (), due or (), trigger_ids or (), strict=True))
    for failure in failures:
        logger.error("Captures not expanded (kept; run `eventing_capture sync`): %s", failure)
    return done


def expand_all(using: str | None = None) -> Expanded:
    """Expand captures until none is left that this transaction can take."""
    total = Expanded()
    while True:
        done = expand_captures(using)
        total.captures += done.captures
        total.batch_ids += done.batch_ids
        if not done.more:
            return total


def pending_captures(using: str | None = None) -> tuple[int, float | None]:
    """Captures not expanded yet, and the age in seconds of the oldest (None if none)."""
    db = using or settings.DATABASE
    if connections[db].vendor != "postgresql":
        return 0, None
    with connections[db].cursor() as cursor:
        cursor.execute(
            "SELECT count(*), extract(epoch FROM clock_timestamp() - min(created_at)) "
            f"FROM {ident(EventCapture._meta.db_table)}"
        )
        count, age = cursor.fetchone()
    return count, None if age is None else float(age)
