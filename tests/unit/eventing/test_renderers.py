"""The request-transform renderers are a piece of the per-process runtime: `runtime.stop()` ends
their child processes, and a forked process renders on children of its own."""

from __future__ import annotations

from eventing import runtime
from eventing.webhooks import transform
from tests.unit.eventing.forked import in_forked_child

CONTEXT = {"data": {"n": 7}}


def render(source: str = "{{ data.n }}") -> str:
    """One template rendered the way a delivery renders it."""
    return transform.run(source, CONTEXT, "body template", 1000, "MAX_PAYLOAD_BYTES")


def children(pool) -> list:
    """The pool's child processes once its spare has started (all idle between renders)."""
    if pool.spare is not None:
        pool.spare.join(30)
    return [child.process for child in pool.idle]


def test_stop_ends_the_renderer_children_and_a_later_render_starts_afresh():
    assert render() == "7"
    pool = transform.renderers.existing()
    processes = children(pool)
    assert processes
    assert all(process.poll() is None for process in processes)

    assert runtime.stop(30)

    assert all(process.poll() is not None for process in processes)  # ended and reaped
    assert transform.renderers.existing() is None
    assert render() == "7"
    assert transform.renderers.existing() is not pool


def test_a_forked_process_renders_on_children_of_its_own_and_leaves_the_parents():
    assert render() == "7"
    parents = transform.renderers.existing()
    parent_pids = {process.pid for process in children(parents)}

    def child() -> str:  # a forked worker: the parent's children are not its own
        inherited = transform.renderers.existing()
        rendered = render()
        mine = transform.renderers.existing()
        own_pids = {process.pid for process in children(mine)}
        return (
            f"{inherited is None} {rendered} {mine is not parents} "
            f"{bool(own_pids) and not own_pids & parent_pids} {runtime.stop(30)}"
        )

    answer = in_forked_child(child)

    assert answer == "True 7 True True True"
    # The child's stop() ended its own children only: the parent's still render.
    assert all(process.poll() is None for process in children(parents))
    assert render() == "7"
    assert transform.renderers.existing() is parents
