"""The threads of a worker process that make a batch's webhook calls side by side.

A batch claims only as many rows as there are free sender threads, so every claimed row is
sent at once and its lease (the trigger's timeout plus LEASE_GRACE_S) never runs out while
the row waits for a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from eventing.conf import settings
from eventing.runtime import PerProcess

T = TypeVar("T")
R = TypeVar("R")


class SenderPool:
    """A fixed number of sender threads, handed out as slots."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self.changed = threading.Condition()
        self.executor = ThreadPoolExecutor(size, thread_name_prefix="eventing-sender")

    def reserve(self, wanted: int) -> int:
        """Take up to `wanted` slots, waiting until at least one is free; how many were taken."""
        with self.changed:
            self.changed.wait_for(lambda: self.free > 0)
            taken = min(wanted, self.free)
            self.free -= taken
            return taken

    def release(self, count: int) -> None:
        """Give `count` slots back."""
        if count <= 0:
            return
        with self.changed:
            self.free += count
            self.changed.notify_all()

    def run(self, call: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`call` on every item at once (one reserved slot each, released as each ends)."""

        def one(item: T) -> R:
            try:
                return call(item)
            finally:
                self.release(1)

        if len(items) == 1:
            # No hand-over for a single row: the calling thread sends it.
            return [one(items[0])]
        futures = [self.executor.submit(one, item) for item in items]
        return [future.result() for future in futures]

    def stop(self, timeout_s: float) -> bool:
        """Wait for calls in flight (all slots back), then end the threads; False if some ran on."""
        with self.changed:
            finished = self.changed.wait_for(lambda: self.free == self.size, timeout_s)
        # Idle threads end at once, so joining them is bounded; busy ones are left to finish.
        self.executor.shutdown(wait=finished)
        return finished


def make_pool() -> SenderPool:
    """A pool of EVENTING["SENDER_THREADS"] threads."""
    return SenderPool(settings.SENDER_THREADS)


# This process's sender pool (eventing.runtime stops it at exit).
pool = PerProcess(make_pool, stop=SenderPool.stop)
