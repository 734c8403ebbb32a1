"""Switching capture modes both ways while two processes of each mode write: each write gives
exactly one event, none lost, none twice."""

from __future__ import annotations

import collections
import subprocess
import sys
import time

import pytest

from eventing.capture import database as capture_db
from eventing.models import EventLog
from tests.factories import TriggerFactory
from tests.processes import process_env
from tests.support.capture_db import POSTGRES_ONLY
from tests.testapp.models import Order

pytestmark = [POSTGRES_ONLY, pytest.mark.slow]

FIRST = {"sig-a": "signals", "sig-b": "signals", "db-a": "database", "db-b": "database"}
# Switching back, the database-mode processes are replaced by signal-mode ones.
ROLLED = {"sig-c": "signals", "sig-d": "signals"}
PATIENCE_S = 60.0
WRITER = "tests.support.capture_db_writer_process"


def written_by(tag: str) -> int:
    return Order.objects.filter(status__startswith=f"{tag}-").count()


def wait_for_more_writes(tags) -> None:
    """Until every process wrote at least 20 more orders than now (the switch is under load)."""
    start = {tag: written_by(tag) for tag in tags}
    deadline = time.monotonic() + PATIENCE_S
    while any(written_by(tag) < start[tag] + 20 for tag in tags):
        late = {tag: (start[tag], written_by(tag)) for tag in tags}
        assert time.monotonic() < deadline, f"a writer process stalled: {late}"
        time.sleep(0.05)


def start_writers(modes: dict[str, str], folder) -> dict[str, subprocess.Popen]:
    """One writer process per tag, each stopped by a file of its own in `folder`."""
    return {
        tag: subprocess.Popen(
            [sys.executable, "-m", WRITER, tag, str(folder / tag)],
            env=process_env(EVENTING_TEST_CAPTURE=mode),
            stdout=subprocess.PIPE,
            text=True,
        )
        for tag, mode in modes.items()
    }


def stop_writers(processes: dict[str, subprocess.Popen], folder) -> dict[str, int]:
    """Stop these writers; how many orders each wrote."""
    for tag in processes:
        (folder / tag).touch()
    outputs = {tag: p.communicate(timeout=60)[0] for tag, p in processes.items()}
    return {tag: int(out.strip() or 0) for tag, out in outputs.items()}


def test_switching_both_ways_under_writes_of_both_modes_records_each_write_once(
    transactional_db, settings, tmp_path
):
    """As docs/operations.md says: to database mode, `sync` at any time (before, during or
    after the processes change mode); back to signals, the processes change mode first and
    `sync` in signal mode drops the triggers once no database-mode process is left."""
    settings.EVENTING = {**settings.EVENTING, "CAPTURE": "signals"}
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    first = start_writers(FIRST, tmp_path)
    rolled: dict[str, subprocess.Popen] = {}
    counts: dict[str, int] = {}
    try:
        wait_for_more_writes(FIRST)  # no capture trigger yet: everyone records by signals
        settings.EVENTING = {**settings.EVENTING, "CAPTURE": "database"}
        assert any(line.startswith("created trigger") for line in capture_db.sync())
        wait_for_more_writes(FIRST)  # database-mode writes now come from the trigger
        # Back to signals: the database-mode processes are replaced, one mode running beside
        # the other meanwhile; then the triggers go.
        rolled = start_writers(ROLLED, tmp_path)
        wait_for_more_writes([*FIRST, *ROLLED])
        counts |= stop_writers({t: first.pop(t) for t in ("db-a", "db-b")}, tmp_path)
        settings.EVENTING = {**settings.EVENTING, "CAPTURE": "signals"}
        assert any(line.startswith("dropped trigger") for line in capture_db.sync())
        wait_for_more_writes(["sig-a", "sig-b", *ROLLED])
    finally:
        counts |= stop_writers(first, tmp_path) if first else {}
        counts |= stop_writers(rolled, tmp_path) if rolled else {}
        settings.EVENTING = {**settings.EVENTING, "CAPTURE": "database"}
        capture_db.drop()

    statuses = set(Order.objects.values_list("status", flat=True))
    assert len(statuses) == sum(counts.values()) >= 6 * 40
    events = collections.Counter(
        payload["new"]["status"]
        for payload in EventLog.objects.filter(type="DB_INSERT").values_list("payload", flat=True)
    )
    assert set(events) == statuses  # none lost
    assert set(events.values()) == {1}  # none twice
