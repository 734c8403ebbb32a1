"""Marks and helpers of the database-capture tests."""

from __future__ import annotations

import subprocess

import pytest
from django.db import connection

from eventing.models import EventLog
from tests.processes import database_url

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


def psql(sql: str) -> None:
    """Run one statement from a separate psql process (another program, as far as we know)."""
    result = subprocess.run(
        ["psql", database_url(), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def insert_sql(status: str) -> str:
    """An order inserted by hand, as another program would."""
    return (
        "INSERT INTO testapp_order (status, total, quantity, note, attachment) "
        f"VALUES ('{status}', 1, 1, '', '')"
    )
