"""Marks and helpers of the database-capture tests."""

from __future__ import annotations

import pytest
from django.db import connection

from eventing.models import EventLog

# Trigger functions are PostgreSQL's: every module of this folder uses this mark.
POSTGRES_ONLY = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="database capture needs PostgreSQL"
)


def payloads(event_type: str | None = None, **filters) -> list[dict]:
    """Payloads of recorded events, oldest first."""
    rows = EventLog.objects.filter(**filters)
    if event_type:
        rows = rows.filter(type=event_type)
    return [e.payload for e in rows.order_by("created_at", "id")]
