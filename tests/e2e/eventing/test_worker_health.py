"""/healthz's `workers` check and the heartbeat every worker process writes."""

from __future__ import annotations

import datetime as dt
import threading
from types import SimpleNamespace

import pytest
import requests
from celery import Celery
from celery.signals import celeryd_init, worker_ready
from django.utils import timezone

from eventing.models import Heartbeat
from eventing.ops import health
from eventing.ops.bootsteps import EventingWorkerStep
from tests.processes import CeleryProcess, workers_parked
from tests.stack import free_port
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


def test_the_worker_bootstep_starts_the_heartbeat_once_per_process_and_stops_it():
    class Worker:
        hostname = "w4@host"

    step = EventingWorkerStep(Worker())
    step.start(Worker())
    step.start(Worker())  # started again (a restart of the step): still one thread
    try:
        assert wait_for_row("worker:w4@host")
        assert heartbeat_threads() == 1
    finally:
        step.stop(Worker())
    assert heartbeat_threads() == 0
    assert not Heartbeat.objects.filter(name="worker:w4@host").exists()


def test_celeryd_init_adds_the_bootstep_to_the_app_of_the_worker_being_built():
    app = Celery("bootstep-test", set_as_current=False)
    assert EventingWorkerStep not in app.steps["worker"]
    celeryd_init.send(sender="w5@host", instance=SimpleNamespace(app=app), conf=app.conf)
    assert EventingWorkerStep in app.steps["worker"]

    # No heartbeat from a mere Celery signal any more: only a worker that runs the step beats.
    class Consumer:
        hostname = "w6@host"

    worker_ready.send(sender=Consumer())
    assert heartbeat_threads() == 0


def test_a_real_worker_beats_through_its_bootstep_and_serves_metrics_until_it_stops():
    port = free_port()
    process = CeleryProcess(
        name="hb1", beat=False, concurrency=1, env={"EVENTING_WORKER_METRICS_PORT": str(port)}
    )
    process.start()
    try:
        row = wait_until(
            lambda: Heartbeat.objects.filter(name__startswith="worker:hb1@").first(),
            timeout_s=30,
            message="the worker's heartbeat row",
        )
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert metrics.status_code == 200
        assert "eventing_" in metrics.text
    finally:
        process.stop()
    # A worker stopped on purpose takes its row with it, and frees its metrics port.
    assert not Heartbeat.objects.filter(name=row.name).exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


def heartbeat_threads() -> int:
    """How many heartbeat threads this process runs."""
    return sum(t.name == "eventing-heartbeat" for t in threading.enumerate())


def wait_for_row(name: str) -> Heartbeat:
    """The heartbeat row `name`, once it is written."""
    return wait_until(
        lambda: Heartbeat.objects.filter(name=name).first(), timeout_s=10, message=name
    )
