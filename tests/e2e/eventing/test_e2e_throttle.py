"""End to end, two worker processes and a real receiver: a trigger's rate_limit and
max_in_flight hold across both."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import transaction

from eventing import emit
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory
from tests.receiver import Receiver
from tests.waiting import wait_until

# `stacks`: the broker and the database engine decide this outcome; make test runs it on each.
pytestmark = [pytest.mark.e2e, pytest.mark.stacks, pytest.mark.django_db(transaction=True)]


class CountsInFlight(Receiver):
    """Counts the requests it is handling at once (from arrival until its answer is written)."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.now = self.most = 0

    def handle(self, handler, body):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            super().handle(handler, body)
        finally:
            with self.lock:
                self.now -= 1


@pytest.fixture
def counting():
    server = CountsInFlight()
    yield server
    server.close()


def emit_many(event_type: str, count: int, commit_every: int = 100) -> list:
    ids = []
    for start in range(0, count, commit_every):
        with transaction.atomic():
            for n in range(start, min(count, start + commit_every)):
                ids += [e.id for e in emit(event_type, {"n": n})]
    return ids


def all_processed(ids: list) -> bool:
    return EventLog.objects.filter(id__in=ids, status=EventStatus.PROCESSED).count() == len(ids)


def test_rate_limit_holds_across_two_worker_processes(two_workers, receiver):
    # 20/s for 10 s: a rate two starved workers still reach beside a CPU hog (at 50/s on
    # SQLite, beside other tests and a machine loaded 6 times over, they managed 23.6/s).
    rate = 20
    TriggerFactory(type="limited", rate_limit=rate, url=receiver.url("/ok/limited"))

    ids = emit_many("limited", 200)

    arrivals = sorted(r.at for r in receiver.wait_for("/ok/limited", len(ids), timeout_s=60))
    # The steady part: after the first second (a full bucket lets one second's worth through
    # at once) and before the last second (the queue runs dry).
    steady = [t for t in arrivals if arrivals[0] + 1.5 <= t <= arrivals[-1] - 1.0]
    measured = (len(steady) - 1) / (steady[-1] - steady[0])
    # The limit is a ceiling, held whatever the load.
    assert measured <= rate * 1.1, f"{measured:.1f} events/s"
    # And the workers reach it: within 10 % on a networked broker. The embedded broker's workers
    # poll its folder once a second, so on a loaded 2-core machine its rate dips between polls
    # (43.6/s seen while other tests ran; 50.0-50.2/s unloaded).
    embedded = settings.CELERY_BROKER_URL.startswith("filesystem")
    assert measured >= rate * (0.75 if embedded else 0.9), f"{measured:.1f} events/s"
    # Both worker processes sent some.
    assert all("eventing.deliver" in worker.log() for worker in two_workers)
    wait_until(lambda: all_processed(ids), timeout_s=30, message="every event processed")
    # Waiting used no attempts.
    assert set(EventLog.objects.values_list("attempts", flat=True)) == {1}


def test_max_in_flight_is_never_exceeded_at_the_receiver(two_workers, counting):
    TriggerFactory(type="capped", max_in_flight=3, url=counting.url("/slow/0.2"))

    ids = emit_many("capped", 60)

    counting.wait_for("/slow/0.2", len(ids), timeout_s=90)
    assert counting.most == 3  # the cap was reached, and never passed
    wait_until(lambda: all_processed(ids), timeout_s=30, message="every event processed")
    assert set(EventLog.objects.values_list("attempts", flat=True)) == {1}
