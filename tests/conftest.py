"""Shared fixtures: a webhook receiver, Celery workers, triggers."""

from __future__ import annotations

import os
import subprocess
import sys
from unittest import mock

import pytest
from django.core.management import CommandError
from django.db import OperationalError
from django.test import TransactionTestCase

from eventing import runtime
from tests.hostile import RawServer
from tests.processes import (
    ROOT,
    CeleryProcess,
    purge_broker,
    start_all,
    stop_all,
    workers_parked,
)
from tests.receiver import Receiver

# eventing.testing's fixtures (emitted_events, webhook_receiver), enabled as a host project would.
pytest_plugins = ["eventing.testing.pytest"]


def flush_retrying_deadlocks(flush):
    """TransactionTestCase's flush, tried again when PostgreSQL picks it as a deadlock victim.

    The session's worker processes keep running between tests: a sweep or a delivery holding a
    lock on one table while it reads another deadlocks with TRUNCATE taking them in turn (seen
    in CI), and PostgreSQL aborts one of the two. Once the worker's transaction is done the
    flush goes through.
    """

    def teardown(self):
        for attempt in range(5):
            try:
                return flush(self)
            except CommandError as exc:  # flush wraps the database's error
                cause = exc.__cause__
                deadlock = isinstance(cause, OperationalError) and "deadlock" in str(cause)
                if not deadlock or attempt == 4:
                    raise

    return teardown


TransactionTestCase._fixture_teardown = flush_retrying_deadlocks(
    TransactionTestCase._fixture_teardown
)

# An xdist worker runs a test 5 frames deeper than a plain pytest run (execnet's loop beneath
# pytest's). Tests of payloads nested 900 deep sit within those few frames of the recursion
# limit (json.dumps in DRF's JSONField recurses once per level): give them the same headroom.
XDIST_EXTRA_FRAMES = 5
if os.environ.get("PYTEST_XDIST_WORKER"):
    sys.setrecursionlimit(sys.getrecursionlimit() + XDIST_EXTRA_FRAMES)


@pytest.fixture
def fresh_clone(tmp_path):
    """A clone of this repository's committed HEAD, for `make run` with this virtualenv.

    Its requirements files are dated back: the clone's fresh timestamps would make `make`
    reinstall them into the shared virtualenv (VENV=…), which already holds them.
    """
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    target = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True)
    for name in ("requirements.txt", "requirements-dev.txt"):
        os.utime(target / name, (0, 0))
    return target


@pytest.fixture
def receiver():
    """A real HTTP receiver on 127.0.0.1."""
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """One Celery worker process with embedded beat (the sweeper), for the whole session."""
    with django_db_blocker.unblock():
        purge_broker()
    worker = CeleryProcess().start()
    yield worker
    worker.stop()


@pytest.fixture
def worker(celery_worker, transactional_db):
    """The session's worker, for a test whose rows are committed so the worker sees them."""
    if celery_worker.proc.poll() is not None:
        pytest.fail(f"The Celery worker died:\n{celery_worker.tail()}")
    return celery_worker


@pytest.fixture
def two_workers(transactional_db):
    """Two worker processes of their own (the first runs beat, so the sweeper); the session's
    worker is parked meanwhile so that only these two take the test's messages."""
    with workers_parked():
        processes = [
            CeleryProcess(name=name, beat=beat, concurrency=4)
            for name, beat in (("tw1", True), ("tw2", False))
        ]
        try:
            yield start_all(processes)
        finally:
            stop_all(processes)


@pytest.fixture
def publish_inline(settings):
    """Commits publish inline, not from the background publisher thread."""
    settings.EVENTING = {**settings.EVENTING, "PUBLISH_IN_BACKGROUND": False}


@pytest.fixture
def deliver_messages(publish_inline):
    """Captured `eventing.deliver` messages (one event each) instead of broker publishes."""
    with mock.patch("eventing.tasks.deliver.apply_async") as apply_async:
        yield apply_async


@pytest.fixture
def batch_messages(publish_inline):
    """Captured `eventing.deliver_batch` messages (several events of one trigger each)."""
    with mock.patch("eventing.tasks.deliver_batch.apply_async") as apply_async:
        yield apply_async


@pytest.fixture
def message_per_event(settings, deliver_messages):
    """Captured `eventing.deliver` messages with DELIVERY_BATCH_SIZE 1: every event sent gets
    a message of its own (batch messages have tests of their own)."""
    settings.EVENTING = {**settings.EVENTING, "DELIVERY_BATCH_SIZE": 1}
    return deliver_messages


@pytest.fixture(autouse=True)
def fresh_runtime():
    """Each test runs as in a fresh process: no background thread, broker back-off or cached
    broker answer of another test's (a failed publish skips the broker for BROKER_BACKOFF_S)."""
    runtime.reset()
    yield
    runtime.reset()


@pytest.fixture(autouse=True)
def fresh_trigger_caches():
    """Each test starts with an empty per-process trigger cache (a rolled-back test's triggers
    must not linger for the cache TTL)."""
    from eventing.store import trigger_cache

    trigger_cache.invalidate()


@pytest.fixture
def serve():
    """Start RawServers with a behaviour; all are closed after the test."""
    servers = []

    def start(behaviour) -> RawServer:
        server = RawServer(behaviour)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
