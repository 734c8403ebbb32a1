"""Fault-test fixtures: the broker and the database to ourselves, workers we may kill."""

from __future__ import annotations

import os

import pytest

from tests import stack
from tests.processes import workers_parked
from tests.receiver import Receiver
from tests.support.faults import Cluster


@pytest.fixture
def cluster(transactional_db):
    """Park every other Celery process (the session worker would compete), purge the broker."""

    def broker_up() -> None:
        if not stack.port_open(int(os.environ["EVENTING_REDIS_PORT"])):
            stack.start_redis()  # a failed test may have left the broker down

    with workers_parked(before_restart=broker_up):
        cluster = Cluster()
        yield cluster
        cluster.stop_all()


@pytest.fixture
def receiver():
    """A real HTTP receiver on 127.0.0.1 (restartable on the same port)."""
    server = Receiver()
    yield server
    server.close()
