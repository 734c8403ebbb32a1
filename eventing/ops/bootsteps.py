"""Eventing's part of a Celery worker, as a bootstep: its heartbeat and its metrics server.

Celery builds a worker from bootsteps (`app.steps["worker"]`); Eventing adds one, so the
worker starts these threads when it starts and stops them when it stops. They are pieces of
`eventing.runtime` like every other thread of Eventing: whatever the step did not stop,
`runtime.stop()` does (on worker_shutdown, once the pool has finished its tasks). The step
is added to the app of the worker being built (Celery's `celeryd_init`), so a project need
not name it; a project that builds workers another way adds it itself:
`app.steps["worker"].add(EventingWorkerStep)`.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps
from celery.signals import celeryd_init

from eventing import runtime
from eventing.ops.health import start_worker_heartbeat, worker_heartbeat
from eventing.ops.metrics import start_worker_exporter, worker_exporter

logger = logging.getLogger(__name__)


class EventingWorkerStep(bootsteps.StartStopStep):
    """Starts the worker's heartbeat and metrics server, and stops them."""

    label = "Eventing"

    def start(self, worker: Any) -> None:
        """The worker is starting: its heartbeat row, and its metrics if a port is set."""
        start_worker_heartbeat(getattr(worker, "hostname", None))
        start_worker_exporter()

    def stop(self, worker: Any) -> None:
        """The worker is stopping: no more beats (its row goes at once), no more metrics."""
        for piece in (worker_heartbeat, worker_exporter):
            if not runtime.stop_piece(piece):
                logger.warning("Eventing's %r did not stop in time.", piece.factory.__name__)

    # A warm shutdown stops the step; a cold one terminates it: the same for us.
    terminate = stop


def add_worker_step(sender: Any = None, instance: Any = None, **kwargs: Any) -> None:
    """Celery celeryd_init: add the step to the app of the worker being built (once)."""
    app = getattr(instance, "app", None)
    if app is not None:
        app.steps["worker"].add(EventingWorkerStep)


def connect_worker_step() -> None:
    """Add Eventing's bootstep to every Celery worker this project starts."""
    celeryd_init.connect(add_worker_step, dispatch_uid="eventing.ops.bootsteps", weak=False)
