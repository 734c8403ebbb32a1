"""`eventing_partitions` on a database without native partitioning: a clear refusal.

Marked `stacks`: `make test` runs it in its SQLite stage (on PostgreSQL it is skipped).
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

pytestmark = [
    pytest.mark.skipif(connection.vendor == "postgresql", reason="PostgreSQL partitions"),
    pytest.mark.django_db,
    pytest.mark.stacks,
]


def test_enable_is_refused_naming_postgresql():
    with pytest.raises(CommandError, match="Partitions need PostgreSQL; this database is sqlite"):
        call_command("eventing_partitions", "enable")


def test_status_says_not_partitioned():
    out = StringIO()
    call_command("eventing_partitions", "status", stdout=out)
    assert out.getvalue().splitlines() == [
        "event_logs: not partitioned",
        "invocation_logs: not partitioned",
    ]


@pytest.mark.parametrize("option", ["--interval-days", "--ahead-days"])
def test_a_bad_number_of_days_is_refused_naming_the_option(option):
    with pytest.raises(CommandError, match=f"{option} must be 1 or more"):
        call_command("eventing_partitions", "status", option, "0")
