"""Fault-test helpers: marks, the Celery processes of a test, bursts and delivery counts."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from django.db import transaction

from eventing import emit
from eventing.models import EventLog, EventStatus
from tests.processes import CeleryProcess
from tests.receiver import Receiver
from tests.waiting import wait_until

# Fault tests stop and restart servers: only on the throwaway PostgreSQL + Redis stack.
ON_SERVER_STACK = os.environ.get("EVENTING_STACK") == "postgres"


# Every fault test module sets `pytestmark = FAULT_MARKS`.
FAULT_MARKS = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not ON_SERVER_STACK,
        reason="fault tests stop and restart servers: they run on the throwaway PostgreSQL + "
        "Redis stack only (`python -m tests.stack postgres -- pytest …`, as `make test` does)",
    ),
]


class Cluster:
    """The Celery processes of one fault test; all stopped when the test ends."""

    def __init__(self) -> None:
        self.processes: list[CeleryProcess] = []

    def worker(self, name: str = "fw1", *, beat: bool = True, **env: str) -> CeleryProcess:
        """Start a worker (with embedded beat unless `beat=False`)."""
        process = CeleryProcess(name=name, beat=beat, env=env)
        self.processes.append(process)
        return process.start()

    def beat(self, name: str = "fb1", **env: str) -> CeleryProcess:
        """Start a standalone beat (the sweeper's scheduler)."""
        process = CeleryProcess(kind="beat", name=name, env=env)
        self.processes.append(process)
        return process.start()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.proc and process.proc.poll() is None:
                process.kill()


def burst(count: int, *, event_type: str = "order_placed", batch: int = 200) -> list[str]:
    """Emit `count` events of `event_type` (one trigger each), committed in batches."""
    ids: list[str] = []
    for start in range(0, count, batch):
        with transaction.atomic():
            for n in range(start, min(start + batch, count)):
                ids.extend(str(e.id) for e in emit(event_type, {"n": n}))
    return ids


def webhook_ids(receiver: Receiver, path: str) -> Counter:
    """How often each webhook-id reached `path`."""
    return Counter(r.headers.get("webhook-id") for r in receiver.on(path))


def wait_delivered(receiver: Receiver, path: str, ids: list[str], timeout_s: float) -> Counter:
    """Wait until every id in `ids` reached `path`; the counts per id."""
    wanted = set(ids)

    def all_arrived() -> Counter | None:
        seen = webhook_ids(receiver, path)
        return seen if wanted <= set(seen) else None

    try:
        return wait_until(
            all_arrived,
            timeout_s=timeout_s,
            interval_s=0.25,
            message=f"{len(wanted)} events at {path}",
        )
    except AssertionError:
        missing = wanted - set(webhook_ids(receiver, path))
        states = Counter(EventLog.objects.filter(id__in=missing).values_list("status", flat=True))
        raise AssertionError(
            f"{len(missing)} of {len(wanted)} never arrived; their states: {dict(states)}"
        ) from None


def wait_settled(ids: list[str], timeout_s: float = 30) -> None:
    """Wait until none of `ids` is staged or processing (every one has reached an end)."""
    wait_until(
        lambda: (
            not EventLog.objects.filter(
                id__in=ids, status__in=[EventStatus.STAGED, EventStatus.PROCESSING]
            ).exists()
        ),
        timeout_s=timeout_s,
        interval_s=0.25,
        message="no event staged or processing",
    )


def statuses(ids: list[str]) -> Counter:
    """How many of `ids` are in each status."""
    return Counter(EventLog.objects.filter(id__in=ids).values_list("status", flat=True))
