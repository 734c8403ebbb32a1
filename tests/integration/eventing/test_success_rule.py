"""Whether an attempt succeeded is decided once, and every view of it says the same.

The delivery decides with the outcome rules (a 2xx read in full within the timeout, not a JSON
object with a non-empty string `error`) and stores that verdict on the invocation; the row's
next state, Mission Control's event page, the API's event detail, the metrics and the answer to
an idempotent synchronous repeat all follow it. A 200 status line followed by a timeout, a cut
body or an `error` reply is a failed attempt everywhere.
"""

from __future__ import annotations

import socket

import pytest
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from eventing import emit
from eventing.delivery.deliver import deliver_event
from eventing.models import EventLog, EventStatus, InvocationLog
from tests.factories import EventTypeFactory, TriggerFactory
from tests.hostile import RawServer, http_response, read_request, reply

pytestmark = pytest.mark.django_db

CUT_SHORT = b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{"ok": tr'


def stall_after_head(conn: socket.socket, server: RawServer) -> None:
    """A 200 status line and headers at once, then no body until the caller gives up."""
    read_request(conn)
    server.send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    server.closed.wait(10)


# reply behaviour, accepted by the outcome rules, status class in the metrics
CASES = {
    "accepted": (reply(http_response(200, b'{"ok": true}')), True, "2xx"),
    "error_reply": (reply(http_response(200, b'{"error": "out of stock"}')), False, "2xx"),
    "cut_short": (reply(CUT_SHORT), False, "error"),
    "timed_out": (stall_after_head, False, "error"),
}


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Samples of /metrics keyed by (name, sorted labels)."""
    samples = {}
    text = client.get("/metrics").content.decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def count(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.parametrize("case", CASES)
def test_every_view_of_an_attempt_shows_the_deliverys_verdict(
    case, serve, client, admin_client, admin_user
):
    behaviour, accepted, status_class = CASES[case]
    server = serve(behaviour)
    trigger = TriggerFactory(type="order_placed", url=server.url("/"), timeout_ms=500)
    before = scrape(client)
    [event] = emit("order_placed", {"n": 1})
    deliver_event(event.id, trigger.pk)  # what a worker runs
    event.refresh_from_db()
    invocation = InvocationLog.objects.get(event=event)
    assert invocation.response_status_code == 200  # every one of them said 200

    # The delivery's decision, and the verdict stored with the attempt.
    assert event.status == (EventStatus.PROCESSED if accepted else EventStatus.STAGED)
    assert invocation.succeeded is accepted
    # Mission Control's event page.
    page = admin_client.get(
        reverse("mission_control:eventing_eventlog_change", args=[event.id])
    ).content.decode()
    assert ("mc-inv-ok" in page, "mc-inv-bad" in page) == (accepted, not accepted)
    # The API's event detail.
    api = APIClient()
    api.force_authenticate(admin_user)
    [shown] = api.get(f"/api/eventing/events/{event.id}/").json()["invocations"]
    assert shown["succeeded"] is accepted
    # The metrics.
    after = scrape(client)

    def delta(name: str, **labels) -> float:
        return count(after, name, **labels) - count(before, name, **labels)

    events = {"trigger": trigger.name, "type": "order_placed"}
    assert delta("eventing_events_processed_total", **events) == (1 if accepted else 0)
    assert delta("eventing_events_retried_total", **events) == (0 if accepted else 1)
    calls = {"trigger": trigger.name, "status_class": status_class}
    assert delta("eventing_invocations_total", **calls) == 1


@pytest.mark.parametrize("case", CASES)
def test_a_synchronous_repeat_answers_only_an_accepted_reply(case, serve):
    """An idempotent repeat of isSynchronous answers the first accepted reply: never one the
    delivery refused."""
    behaviour, accepted, _ = CASES[case]
    server = serve(behaviour)
    EventTypeFactory(name="order_placed", queue_rule="allow")
    TriggerFactory(type="order_placed", url=server.url("/"), timeout_ms=500)
    body = {"type": "order_placed", "payload": {"n": 1}, "isSynchronous": True}
    url = "/v1/api/default/eventing/queue"
    first = APIClient().post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="sync-1")
    again = APIClient().post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="sync-1")
    assert first.status_code == (200 if accepted else 502)
    assert again.json()["result"] == ({"ok": True} if accepted else None)
    assert again.json()["event_ids"] == [str(EventLog.objects.get().id)]
