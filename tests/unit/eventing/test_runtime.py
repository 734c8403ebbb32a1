"""The per-process runtime: pieces start on first use, a forked child makes its own, stop()
stops the last started first and what stopping brings about, within its bound."""

from __future__ import annotations

from eventing import runtime
from eventing.dispatch import publish as enqueue
from tests.unit.eventing.forked import in_forked_child


def piece(name: str, stopped: list, then=None) -> runtime.PerProcess:
    """A piece whose instance is `name`; stopping it records the name, then calls `then`."""

    def stop(instance: str, timeout_s: float) -> bool:
        stopped.append(instance)
        if then is not None:
            then()
        return True

    return runtime.PerProcess(lambda: name, stop=stop)


def test_stop_stops_the_last_started_first_and_a_second_stop_has_nothing_left():
    stopped = []
    first, second = piece("first", stopped), piece("second", stopped)
    assert (first(), second(), first()) == ("first", "second", "first")
    assert runtime.stop(5)
    assert stopped == ["second", "first"]
    assert runtime.stop(5)
    assert stopped == ["second", "first"]
    assert first.existing() is None


def test_a_piece_started_while_stopping_is_stopped_too():
    stopped = []
    publisher = piece("publisher", stopped)
    writer = piece("writer", stopped, then=publisher)  # its last job hands rows over
    writer()
    publisher()
    assert runtime.stop(5)
    # The publisher, stopped first, is started again by the writer's last job: stopped again.
    assert stopped == ["publisher", "writer", "publisher"]
    assert publisher.existing() is None


def test_a_piece_that_overruns_its_bound_makes_stop_say_so():
    slow = runtime.PerProcess(lambda: "slow", stop=lambda instance, timeout_s: False)
    slow()
    assert not runtime.stop(0.1)
    assert slow.existing() is None  # forgotten all the same


def test_a_forked_child_starts_its_own_publisher(monkeypatch):
    monkeypatch.setattr(enqueue, "publish_rows", lambda rows, using: None)
    parents = enqueue.publisher()

    def child() -> str:  # the parent's publisher thread does not exist here
        mine = enqueue.publisher()
        mine.submit(["row"], "default")
        return f"{mine is not parents} {mine.flush(5)} {runtime.stop(5)}"

    assert in_forked_child(child) == "True True True"
    assert parents.thread.is_alive()  # the parent's own is untouched
