"""End to end: a template that hits a bound fails its attempt at once, naming the bound, and
the real worker that rendered it goes on delivering."""

from __future__ import annotations

import pytest

from eventing import emit
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("body", "bound"),
    [
        ('{"x": {{ [data.s] * 1000000 }}}', "MAX_PAYLOAD_BYTES"),
        ('{"x": {{ ([data.s] * 1000000) | tojson }}}', "MAX_PAYLOAD_BYTES"),
        ("{{ (('x ' * 500000) | title).split() | length }}", "TRANSFORM_RENDER_MS"),
    ],
)
def test_a_template_over_a_bound_fails_at_once_and_the_worker_stays_up(
    worker, receiver, body, bound
):
    """Attack: `{{ [s]*1000000 }}` and `|tojson` grew the worker to 5.2 GB (MemoryError, then
    the attempt was retried); a CPU-bound template ran 27-33 s against a 250 ms budget."""
    bomb = TriggerFactory(
        type="bound_bomb", url=receiver.url("/ok/never"), retries=3, transform_body=body
    )
    plain = TriggerFactory(type="bound_plain", url=receiver.url("/ok/plain"))
    emit("bound_bomb", {"s": "x" * 1000})

    failed = wait_until(
        lambda: EventLog.objects.filter(trigger=bomb, status=EventStatus.FAILED).first(),
        message="the event failed",
    )
    assert failed.attempts == 1  # no retry: the same template would hit the same bound
    assert bound in failed.remark
    assert receiver.on("/ok/never") == []

    emit("bound_plain", {"after": True})
    wait_until(lambda: receiver.on("/ok/plain"), message="the next event delivered")
    wait_until(
        lambda: EventLog.objects.get(trigger=plain).status == EventStatus.PROCESSED,
        message="the next event processed",
    )
    assert worker.proc.poll() is None
