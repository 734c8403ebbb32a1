"""Database connections between Celery tasks: checked at most once a second per thread."""

from __future__ import annotations

import threading
from unittest import mock

from eventing.capture import signals as receivers


def test_connections_are_checked_at_most_once_a_second_per_thread(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(receivers.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(receivers, "_task_thread", threading.local())
    with mock.patch.object(receivers, "close_old_connections") as close_old:
        receivers.close_connections()
        clock[0] += 0.5
        receivers.close_connections()
        assert close_old.call_count == 1
        clock[0] += 0.6
        receivers.close_connections()
        assert close_old.call_count == 2
        # Another thread keeps its own schedule.
        other = threading.Thread(target=receivers.close_connections)
        other.start()
        other.join()
        assert close_old.call_count == 3
