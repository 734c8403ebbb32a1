"""Fault-test fixtures: the broker and the database to ourselves, workers we may kill."""

from __future__ import annotations

import os

import pytest

from tests import stack
from tests.faults.helpers import Cluster
from tests.processes import CeleryProcess, purge_broker
from tests.receiver import Receiver


@pytest.fixture
def cluster(transactional_db):
    """Park every other Celery process (the session worker would compete), purge the broker."""
    parked = [p for p in CeleryProcess.running if p.proc and p.proc.poll() is None]
    for process in parked:
        process.stop()
    purge_broker()
    cluster = Cluster()
    yield cluster
    cluster.stop_all()
    if not stack.port_open(int(os.environ["EVENTING_REDIS_PORT"])):
        stack.start_redis()  # a failed test may have left the broker down
    purge_broker()
    for process in parked:
        process.start()


@pytest.fixture
def receiver():
    """A real HTTP receiver on 127.0.0.1 (restartable on the same port)."""
    server = Receiver()
    yield server
    server.close()
