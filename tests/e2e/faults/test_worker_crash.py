"""Workers dying mid-burst (SIGKILL, SIGTERM): every event delivered, none stuck."""

from __future__ import annotations

import time

from eventing.models import EventLog, EventStatus
from eventing.ops.health import WORKER_STALE_AFTER_S
from tests.factories import TriggerFactory
from tests.support.faults import (
    FAULT_MARKS,
    burst,
    statuses,
    wait_delivered,
    wait_settled,
    webhook_ids,
)
from tests.waiting import wait_until

pytestmark = FAULT_MARKS


def test_sigkill_mid_burst_loses_nothing(cluster, receiver):
    # Each delivery takes 50 ms at the receiver, so some are surely in flight at the kill.
    TriggerFactory(url=receiver.url("/slow/0.05"), timeout_ms=2000)
    worker = cluster.worker("fw1")
    ids = burst(2000)
    wait_until(
        lambda: len(receiver.on("/slow/0.05")) >= 300, timeout_s=60, message="the burst under way"
    )
    worker.kill()
    # Before the crash the sweeper sent no copies of messages that were only waiting in the
    # queue (a copy runs as a task that finds its event already processed).
    assert "'event is processed'" not in worker.log_path.read_text()
    # Rows claimed when the worker died are the deliveries in flight: only they may repeat.
    in_flight = EventLog.objects.filter(status=EventStatus.PROCESSING).count()
    delivered_before = len(webhook_ids(receiver, "/slow/0.05"))
    assert delivered_before < len(ids), "the burst ended before the kill: nothing was tested"

    started = time.monotonic()
    second = cluster.worker("fw2")
    seen = wait_delivered(receiver, "/slow/0.05", ids, timeout_s=90)
    wait_settled(ids)
    assert statuses(ids) == {EventStatus.PROCESSED: len(ids)}
    duplicates = sum(count - 1 for count in seen.values())
    assert duplicates <= in_flight, (duplicates, in_flight)
    # The sweeper re-sent what the dead worker held, not the queue that was merely waiting
    # (before queue lag was taken into account, this burst ran ~340 useless copies).
    copies = second.log_path.read_text().count("'event is processed'")
    assert copies <= in_flight, copies
    print(
        f"sigkill: {delivered_before} delivered before, {in_flight} in flight, "
        f"{duplicates} duplicates, rest in {time.monotonic() - started:.1f} s"
    )


def test_sigterm_mid_burst_finishes_in_flight_deliveries(cluster, receiver):
    # A slowish receiver, so deliveries are surely in flight when the signal lands.
    TriggerFactory(url=receiver.url("/slow/0.2"), timeout_ms=3000)
    worker = cluster.worker("fw1")
    # Enough that the batches already running when the signal lands cannot hold them all.
    ids = burst(1000)
    wait_until(
        lambda: len(receiver.on("/slow/0.2")) >= 40, timeout_s=60, message="the burst under way"
    )
    worker.stop()  # SIGTERM: warm shutdown
    assert worker.proc.returncode is not None
    # Warm shutdown let every running delivery finish: nothing is left claimed.
    assert EventLog.objects.filter(status=EventStatus.PROCESSING).count() == 0
    assert statuses(ids)[EventStatus.PROCESSED] < len(ids), "the burst ended before the stop"

    cluster.worker("fw2")
    seen = wait_delivered(receiver, "/slow/0.2", ids, timeout_s=90)
    wait_settled(ids)
    assert statuses(ids) == {EventStatus.PROCESSED: len(ids)}
    assert max(seen.values()) == 1  # nothing crashed: exactly once


def test_healthz_is_503_while_no_worker_is_alive(cluster, client):
    cluster.worker("fw1")
    wait_until(
        lambda: client.get("/healthz").status_code == 200,
        timeout_s=30,
        message="/healthz 200 with a worker running",
    )
    cluster.processes[0].kill()  # a crash: no clean shutdown removes its heartbeat
    wait_until(
        lambda: client.get("/healthz").status_code == 503,
        timeout_s=WORKER_STALE_AFTER_S + 10,
        message="/healthz 503 once the worker's heartbeat is stale",
    )
    body = client.get("/healthz").json()
    assert body["workers"]["ok"] is False
    assert "fw1@" not in " ".join(body["workers"]["alive"])
    assert body["database"]["ok"] is True

    cluster.worker("fw2")  # what a supervisor does
    wait_until(
        lambda: client.get("/healthz").status_code == 200,
        timeout_s=30,
        message="/healthz 200 again once a worker is back",
    )
    alive = client.get("/healthz").json()["workers"]["alive"]
    assert any(name.startswith("fw2@") for name in alive), alive
