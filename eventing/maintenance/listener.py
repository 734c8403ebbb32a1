"""The LISTEN side of database capture: what trigger functions capture reaches the broker at once.

Trigger functions store each statement's rows in `event_captures` and `pg_notify`, which
PostgreSQL delivers when the writing transaction commits. A listener thread (started in Celery
workers and beat when `EVENTING["CAPTURE"] = "database"`) expands the captures into `staged`
event rows and then marks those rows sent and publishes them, as `emit()`'s on-commit hook does
for signal-captured rows. One listener per database is active at a time (a session advisory
lock); the others stand by and take over when its connection closes. A lost notification or a
dead listener only delays events until the next sweep: the sweeper expands what is left and
sends every due row without a message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import select
import threading
import time

from celery.signals import beat_init, worker_ready, worker_shutdown
from django.db import close_old_connections, connections
from django.utils import timezone

from eventing.capture.database.expand import CAPTURES_PER_PASS, expand_captures
from eventing.capture.database.mode import CHANNEL, database_capture
from eventing.capture.database.sql import ident
from eventing.conf import settings
from eventing.dispatch.sending import publish_marked
from eventing.runtime import PerProcess

logger = logging.getLogger(__name__)

# Held by the active listener's session: one listener per database publishes.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"eventing.capture.listener").digest()[:8], "big") >> 1
# A standby listener asks for the lock this often (seconds).
STANDBY_RETRY_S = 1.0
# After a failure, wait this long before reconnecting (seconds).
RECONNECT_S = 1.0
# How long one wait for notifications lasts; the thread checks for shutdown in between.
WAIT_S = 1.0
# An idle connection is probed this often, so a dead server is noticed (seconds).
PROBE_EVERY_S = 30.0


def publish_captures() -> int:
    """Expand every capture there is into event rows and send them; how many sent.

    Each pass expands and marks its rows sent in one statement (staged, deliverable, due soon,
    not behind an unfinished row of its ordering key), then publishes them.
    """
    sent = 0
    while True:
        now = timezone.now()
        horizon = now + dt.timedelta(seconds=settings.ETA_HORIZON_S)
        done = expand_captures(limit=CAPTURES_PER_PASS, sent_at=now, sent_until=horizon)
        sent += publish_marked(done.sent, now)
        if not done.more:
            return sent


class Listener:
    """A daemon thread: take the lock, LISTEN, expand and publish; reconnect on error."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        # Set while this listener holds the lock and listens (tests and health read it).
        self.active = threading.Event()
        self.thread = threading.Thread(
            target=self.run, name="eventing-capture-listener", daemon=True
        )
        self.thread.start()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.listen()
            except Exception:  # noqa: BLE001 - the thread must survive; the sweeper covers
                logger.exception("Capture listener failed; reconnecting")
            finally:
                self.active.clear()
                close_old_connections()
            self.stopping.wait(RECONNECT_S)
        connections.close_all()  # this thread's own connections

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop listening and release the lock (its connection closes)."""
        self.stopping.set()
        self.thread.join(timeout_s)

    def listen(self) -> None:
        """One connection's life: stand by for the lock, then expand and publish captures."""
        wrapper = connections[settings.DATABASE]
        conn = wrapper.get_new_connection(wrapper.get_connection_params())
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                while True:
                    cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
                    if cursor.fetchone()[0]:
                        break
                    if self.stopping.wait(STANDBY_RETRY_S):
                        return
                cursor.execute(f"LISTEN {ident(CHANNEL)}")
            self.active.set()
            logger.info("Capture listener active on %s", settings.DATABASE)
            publish_captures()  # written while no listener was active
            self.serve(conn)
        finally:
            conn.close()

    def serve(self, conn) -> None:
        """Wait for notifications and expand and publish captures until asked to stop."""
        probed = time.monotonic()
        while not self.stopping.is_set():
            ready, _, _ = select.select([conn], [], [], WAIT_S)
            if not ready:
                if time.monotonic() - probed > PROBE_EVERY_S:
                    with conn.cursor() as cursor:
                        cursor.execute("SELECT 1")
                    probed = time.monotonic()
                continue
            conn.poll()
            conn.notifies.clear()  # each says "captures were committed"; which is in the table
            publish_captures()


listener = PerProcess(Listener)


def start_listener(**kwargs) -> None:
    """Celery worker_ready / beat_init: listen when database capture is on."""
    if database_capture():
        listener()


def stop_listener(**kwargs) -> None:
    """Celery worker_shutdown: release the lock so a standby takes over at once."""
    current = listener.existing()
    if current is not None:
        current.stop()


def listener_connect() -> None:
    """Start a listener in every Celery worker and beat process; called from ready()."""
    worker_ready.connect(start_listener, dispatch_uid="eventing.capture.listener", weak=False)
    beat_init.connect(start_listener, dispatch_uid="eventing.capture.listener_beat", weak=False)
    worker_shutdown.connect(
        stop_listener, dispatch_uid="eventing.capture.listener_stop", weak=False
    )
