"""Writes that must not share the caller's transaction: file intents outlive a rollback.

A storage operation is not transactional: a file written inside `transaction.atomic()` stays
written when the block rolls back, so its event rows must not be rolled back with it. Where the
rows are written depends on the caller's connection to `EVENTING["DATABASE"]`:

- autocommit (no transaction open): written inline on that connection; each statement commits
  at once. The common case, and the cheapest.
- inside a transaction, on a database with row-level locking (PostgreSQL, MySQL): written by a
  background thread of this process, which has its own connection (Django connections are per
  thread), so they commit independently of the caller; the caller waits for the intent row, so
  it is durable before the storage operation starts.
- inside a transaction on SQLite: the caller's `BEGIN IMMEDIATE` holds the only write lock of
  the whole file until it commits or rolls back. Any other connection (a cloned alias, another
  thread) would wait on the busy timeout while the caller waits for it: a deadlock. So the
  caller does not wait: the thread's write queues behind the caller's lock and lands as soon as
  the caller's transaction ends, either way. The price: a crash before that moment loses the
  event (the file may exist without one). Documented in docs/storage.md.

The thread is not a second process: the caller never blocks on it except for the intent write
on databases where that cannot deadlock.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from enum import Enum

from django.db import OperationalError, connections

from eventing.runtime import PerProcess

logger = logging.getLogger(__name__)

# The thread closes its connections after this long without work, so it holds none while idle
# (and test databases can be dropped).
IDLE_CLOSE_S = 0.5
# A job failing with OperationalError (SQLite: the caller still holds the lock after the busy
# timeout; PostgreSQL: connection lost) is tried again for this long before it is given up.
RETRY_FOR_S = 600.0
RETRY_PAUSE_S = 1.0
# How long a caller waits for the thread to commit an intent (Mode.WAIT). The database cannot
# see a wait that passes through this thread, so a lock the caller holds and the job needs
# would never be reported as a deadlock; this turns it into an error instead of a hang.
WAIT_TIMEOUT_S = 30.0
# Handed to the writer thread by stop(): it closes its connections and ends.
STOP = None


class Mode(Enum):
    """How a detached write is made, given the caller's connection."""

    INLINE = "inline"  # on the caller's connection, which is in autocommit
    WAIT = "wait"  # by the writer thread; the caller waits for it
    DEFER = "defer"  # by the writer thread, after the caller's SQLite transaction ends


def mode_for(db: str) -> Mode:
    """Where a write to `db` that must survive the caller's rollback can be made right now."""
    connection = connections[db]
    if not connection.in_atomic_block and connection.get_autocommit():
        return Mode.INLINE
    if connection.vendor == "sqlite":
        return Mode.DEFER
    return Mode.WAIT


def run_detached(job: Callable[[], object], db: str, *, wait: bool) -> None:
    """Run `job` (which writes to `db`) so its writes commit outside the caller's transaction.

    With `wait`, return only once the job committed (re-raising its error), unless waiting
    could deadlock (SQLite inside a transaction). Without it, errors are logged, not raised.
    """
    mode = mode_for(db)
    if mode is Mode.INLINE:
        if wait:
            job()
            return
        try:
            job()
        except Exception:
            logger.exception("Detached write failed")
        return
    waiting = wait and mode is Mode.WAIT
    future = writer().submit(job, log_errors=not waiting)
    if waiting:
        try:
            future.result(timeout=WAIT_TIMEOUT_S)
        except FutureTimeout:
            raise OperationalError(
                f"The event database did not take the write within {WAIT_TIMEOUT_S:.0f} s."
            ) from None


class DetachedWriter:
    """One daemon thread running write jobs in order, each with the thread's own connections."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[Callable[[], object], Future, bool] | None] = queue.Queue()
        self.lock = threading.Lock()
        self.idle = threading.Event()
        self.idle.set()
        self.thread = threading.Thread(target=self.loop, name="eventing-detached", daemon=True)
        self.thread.start()

    def submit(self, job: Callable[[], object], *, log_errors: bool) -> Future:
        """Queue `job`; the future holds its result or error (logged if nobody waits)."""
        future: Future = Future()
        with self.lock:
            self.idle.clear()
            self.jobs.put((job, future, log_errors))
        return future

    def loop(self) -> None:
        """Run jobs as they come; close this thread's connections whenever it goes idle."""
        while True:
            try:
                item = self.jobs.get(timeout=IDLE_CLOSE_S)
            except queue.Empty:
                connections.close_all()
                with self.lock:
                    if self.jobs.empty():
                        self.idle.set()
                continue
            if item is STOP:
                connections.close_all()
                return
            job, future, log_errors = item
            try:
                future.set_result(self.attempt(job))
            except Exception as exc:
                future.set_exception(exc)
                if log_errors:
                    logger.error("Detached write failed", exc_info=exc)
            finally:
                self.jobs.task_done()

    def attempt(self, job: Callable[[], object]) -> object:
        """Run `job`, again after a pause while it fails on a busy or lost database."""
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            try:
                return job()
            except OperationalError as exc:
                # A broken connection must not be reused for the next try.
                connections.close_all()
                if time.monotonic() > deadline:
                    raise
                logger.warning("Detached write waits for the database: %s", exc)
                time.sleep(RETRY_PAUSE_S)

    def flush(self, timeout_s: float) -> bool:
        """Wait until every queued job ran (and connections closed); False on timeout."""
        return self.idle.wait(timeout_s)

    def stop(self, timeout_s: float) -> bool:
        """Run the queued jobs, then end the thread; False (logged) if jobs were left over."""
        deadline = time.monotonic() + timeout_s
        if not self.flush(timeout_s):
            logger.error("Stopping with file events still queued for the database")
            return False
        self.jobs.put(STOP)
        self.thread.join(max(0.0, deadline - time.monotonic()))
        return not self.thread.is_alive()


# This process's writer thread, started on first use (eventing.runtime stops it at exit).
writer = PerProcess(DetachedWriter, stop=DetachedWriter.stop)


def flush(timeout_s: float = 30.0) -> bool:
    """Wait for the writer thread to finish its queued jobs (tests)."""
    current = writer.existing()
    return current.flush(timeout_s) if current is not None else True
