"""/healthz's `workers` check and the heartbeat every worker process writes."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from celery.signals import worker_ready, worker_shutdown
from django.utils import timezone

from eventing.models import Heartbeat
from eventing.ops import health
from tests.processes import workers_parked
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module", autouse=True)
def session_workers_parked():
    """A running session worker rewrites its heartbeat every 2 s: park it for this module."""
    with workers_parked():
        yield


@pytest.fixture(autouse=True)
def no_other_workers():
    """Only this test's heartbeats count (a parked worker may have left its row)."""
    Heartbeat.objects.filter(name__startswith=health.WORKER_HEARTBEAT_PREFIX).delete()


def test_workers_503_when_no_worker_ever_reported(client):
    response = client.get("/healthz?checks=workers")
    assert response.status_code == 503
    body = response.json()["workers"]
    assert body["alive"] == []
    assert "are workers running" in body["error"]


def test_workers_503_when_the_last_beat_is_stale(client):
    stale = timezone.now() - dt.timedelta(seconds=health.WORKER_STALE_AFTER_S + 1)
    Heartbeat.objects.create(name="worker:w1@host", at=stale)
    assert client.get("/healthz?checks=workers").status_code == 503


def test_one_recent_worker_is_enough(client):
    stale = timezone.now() - dt.timedelta(seconds=health.WORKER_STALE_AFTER_S + 1)
    Heartbeat.objects.create(name="worker:old@host", at=stale)
    Heartbeat.objects.create(name="worker:w2@host", at=timezone.now())
    response = client.get("/healthz?checks=workers")
    assert response.status_code == 200, response.json()
    assert response.json()["workers"]["alive"] == ["w2@host"]


def test_the_heartbeat_thread_writes_and_a_clean_stop_removes_the_row(client):
    beat = health.WorkerHeartbeat("w3@" + "h" * 60)  # the key is cut to its 50 characters
    beat.start()
    try:
        row = wait_for_row(beat.name)
        assert len(beat.name) == 50
        assert (timezone.now() - row.at).total_seconds() < health.WORKER_STALE_AFTER_S
        assert client.get("/healthz?checks=workers").status_code == 200
    finally:
        beat.stop()
    assert not beat.thread.is_alive()
    assert not Heartbeat.objects.filter(name=beat.name).exists()
    assert client.get("/healthz?checks=workers").status_code == 503


def test_celery_signals_start_the_heartbeat_once_per_process_and_stop_it():
    class Consumer:
        hostname = "w4@host"

    worker_ready.send(sender=Consumer())
    worker_ready.send(sender=Consumer())  # a consumer restart sends it again
    try:
        assert wait_for_row("worker:w4@host")
        assert heartbeat_threads() == 1
    finally:
        worker_shutdown.send(sender=Consumer())
    assert heartbeat_threads() == 0
    assert not Heartbeat.objects.filter(name="worker:w4@host").exists()


def heartbeat_threads() -> int:
    """How many heartbeat threads this process runs."""
    return sum(t.name == "eventing-heartbeat" for t in threading.enumerate())


def wait_for_row(name: str) -> Heartbeat:
    """The heartbeat row `name`, once it is written."""
    return wait_until(
        lambda: Heartbeat.objects.filter(name=name).first(), timeout_s=10, message=name
    )
