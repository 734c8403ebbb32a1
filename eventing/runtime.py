"""The per-process runtime: what a worker or web process owns, started, stopped and reset here.

Each piece stays in its stage's module and registers here as a `PerProcess`: the publisher
thread (dispatch/publish.py) and its broker back-off, the detached writer (capture/detached.py),
the sender pool (delivery/senders.py), the deadline thread (webhooks/client.py), the template
renderers' child processes (webhooks/transform.py), the worker heartbeat and the cached broker
answer (ops/health.py), the queue-lag note (dispatch/lag.py).
This module imports no stage: stages import it.

Lifecycle of every piece:

- start: made on first use in a process (the publisher at the first commit with rows to send,
  the sender pool at the first batch, the deadline thread at the first webhook call, the
  detached writer at the first file event inside a transaction, the renderers at the first
  request transform); the worker heartbeat when the worker's bootstep starts.
- fork: threads do not survive a fork. A forked child (a Celery prefork process, a gunicorn
  worker) starts with none of its parent's pieces and makes its own on first use.
- stop: `stop()` stops every piece this process started, the last started first, within one
  bound: the publisher and the detached writer finish what was handed to them, threads are
  joined, renderer children are ended, the heartbeat row is removed. It runs at exit
  (atexit), on Celery's worker_shutdown and, in each prefork child, on worker_process_shutdown.
  A piece used again afterwards starts afresh (and is stopped in turn, so work handed over
  while stopping is not left behind).
- reset: `reset()` is `stop()` for tests: afterwards the process holds no thread, back-off or
  cached answer of Eventing's, as if it had just started. tests/conftest.py calls it around
  every test; tests call it instead of touching a module's private state.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from celery.signals import worker_process_shutdown, worker_shutdown

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Bound on stop() as a whole: the detached writer may need this long to reach a busy database.
STOP_TIMEOUT_S = 30.0

# Every PerProcess, so that a forked child can drop its parent's instances.
_pieces: list[PerProcess[Any]] = []
# The instances this process started, oldest first: stop() takes them from the end.
_started: list[tuple[PerProcess[Any], Any]] = []
_started_lock = threading.Lock()


class PerProcess(Generic[T]):
    """One instance per process, made by `factory` on first use and stopped by `stop`.

    `stop(instance, timeout_s)` flushes and joins what the instance runs, within `timeout_s`,
    and returns False if it could not; pieces holding only state (no thread) need none.
    """

    def __init__(
        self, factory: Callable[..., T], stop: Callable[[T, float], bool] | None = None
    ) -> None:
        self.factory = factory
        self.stop = stop
        self.instance: T | None = None
        self.pid: int | None = None
        self.lock = threading.Lock()
        _pieces.append(self)

    def __call__(self, *args: Any) -> T:
        """This process's instance; the call that makes it passes `args` to the factory."""
        instance = self.instance
        # The pid check also covers a fork that bypassed os.fork's hooks.
        if instance is None or self.pid != os.getpid():
            with self.lock:
                if self.instance is None or self.pid != os.getpid():
                    self.instance, self.pid = self.factory(*args), os.getpid()
                    with _started_lock:
                        _started.append((self, self.instance))
                instance = self.instance
        return instance

    def existing(self) -> T | None:
        """This process's instance if it was made, else None (nothing is started)."""
        return self.instance if self.pid == os.getpid() else None

    def drop(self, instance: T) -> None:
        """Forget `instance` (if still current): the next call makes a new one."""
        with self.lock:
            if self.instance is instance:
                self.instance, self.pid = None, None


def stop(timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop this process's pieces, the last started first, in `timeout_s`; False if one overran."""
    deadline = time.monotonic() + timeout_s
    clean = True
    while True:
        with _started_lock:
            if not _started:
                return clean
            piece, instance = _started.pop()
        # Forgotten first: work handed over from now on goes to a new instance, stopped next.
        piece.drop(instance)
        if piece.stop is None:
            continue
        try:
            clean = piece.stop(instance, max(0.0, deadline - time.monotonic())) and clean
        except Exception:
            logger.exception("Stopping %r failed", instance)
            clean = False


def stop_piece(piece: PerProcess[Any], timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop this process's instance of one piece now (if it was started); the rest run on."""
    with _started_lock:
        entries = [entry for entry in _started if entry[0] is piece]
        for entry in entries:
            _started.remove(entry)
    clean = True
    for _, instance in entries:
        piece.drop(instance)
        if piece.stop is not None:
            clean = piece.stop(instance, timeout_s) and clean
    return clean


def reset() -> bool:
    """Stop and forget everything of this process (tests: a fresh process for each test)."""
    return stop()


def stop_on_signal(**kwargs: Any) -> None:
    """Celery worker_shutdown / worker_process_shutdown: stop this process's pieces."""
    stop()


def connect_lifecycle() -> None:
    """Stop the pieces when a Celery worker, or one of its prefork children, shuts down."""
    worker_shutdown.connect(stop_on_signal, dispatch_uid="eventing.runtime.stop", weak=False)
    worker_process_shutdown.connect(
        stop_on_signal, dispatch_uid="eventing.runtime.stop_child", weak=False
    )


def _after_fork_in_child() -> None:
    # The parent's threads do not exist here, and a lock one of them held stays held.
    global _started_lock
    _started.clear()
    _started_lock = threading.Lock()
    for piece in _pieces:
        piece.instance, piece.pid, piece.lock = None, None, threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(stop)
