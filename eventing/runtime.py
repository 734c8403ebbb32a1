"""One instance per process of the objects that own threads (publisher, senders, deadlines)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """Calls `factory` on first use in each process: threads do not survive a fork, so a
    forked child (a Celery prefork worker, a gunicorn worker) makes its own."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self.factory = factory
        self.instance: T | None = None
        self.pid: int | None = None
        self.lock = threading.Lock()

    def __call__(self) -> T:
        if self.instance is None or self.pid != os.getpid():
            with self.lock:
                if self.instance is None or self.pid != os.getpid():
                    self.instance, self.pid = self.factory(), os.getpid()
        return self.instance

    def existing(self) -> T | None:
        """This process's instance if it was made, else None (nothing is started)."""
        return self.instance if self.pid == os.getpid() else None
