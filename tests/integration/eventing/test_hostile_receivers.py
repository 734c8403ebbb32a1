"""Hostile receivers: slow, huge, broken and lying replies end as failed attempts, in time."""

from __future__ import annotations

import time

import pytest

from eventing import emit
from eventing.delivery.deliver import deliver_event
from eventing.models import EventLog, EventStatus
from eventing.webhooks.request import WebhookRequest, send
from tests.factories import TriggerFactory
from tests.hostile import dribble, http_response, huge, read_request, reply, reset

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"


def call(url: str, timeout_s: float = 1.0):
    request = WebhookRequest(
        url=url,
        headers={"Content-Type": "application/json"},
        body=b'{"a":1}',
        redacted_headers={},
        logged_url=url,
    )
    started = time.monotonic()
    response = send(request, timeout_s)
    return response, time.monotonic() - started


def head_then_dribble(conn, server) -> None:
    """Send the head at once, then the body one byte every 50 ms."""
    read_request(conn)
    server.send(conn, HEAD)
    for _ in range(200):
        if server.closed.is_set():
            return
        server.send(conn, b"x")
        time.sleep(0.05)


@pytest.mark.parametrize(
    "behaviour", [dribble(HEAD, interval_s=0.05), head_then_dribble], ids=["headers", "body"]
)
def test_dribbling_receiver_is_cut_at_the_timeout(serve, behaviour):
    server = serve(behaviour)
    response, elapsed = call(server.url("/"), timeout_s=1.0)
    assert not response.ok
    assert "Timed out after 1 s" in response.error
    assert elapsed < 1.8
    assert response.duration_ms < 1800


def test_one_byte_a_second_headers(serve):
    server = serve(dribble(HEAD, interval_s=1.0))
    response, elapsed = call(server.url("/"), timeout_s=2.0)
    assert "Timed out" in response.error
    assert 1.9 < elapsed < 3.0


def test_hundred_megabyte_reply_is_read_only_up_to_the_limit(serve, settings):
    settings.EVENTING = {**settings.EVENTING, "MAX_RESPONSE_BYTES": 64 * 1024}
    total = 100 * 1024 * 1024
    server = serve(huge(total))
    response, elapsed = call(server.url("/"), timeout_s=5.0)
    assert response.status_code == 200
    assert response.truncated
    assert len(response.body) == 64 * 1024
    assert response.json() is None  # a cut body is never parsed
    # We stopped pulling: far less than 100 MB left the server (socket buffers hold a few MB).
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not server.closed.is_set():
        time.sleep(0.05)
        before = server.bytes_sent
        time.sleep(0.05)
        if server.bytes_sent == before:
            break
    assert server.bytes_sent < total / 4
    assert elapsed < 3


def test_connection_reset_is_a_failed_attempt(serve):
    server = serve(reset)
    response, _ = call(server.url("/"))
    assert not response.ok
    assert response.status_code is None
    assert "ConnectionError" in response.error or "reset" in response.error.lower()


def test_garbage_instead_of_http_is_a_failed_attempt(serve):
    server = serve(reply(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"))
    response, _ = call(server.url("/"))
    assert not response.ok
    assert response.error


def test_tls_to_a_plain_http_server_is_a_failed_attempt(serve):
    # Answers plain HTTP as soon as it accepts, before the client's TLS hello is complete.
    server = serve(lambda conn, srv: srv.send(conn, http_response(200, b"{}")))
    response, elapsed = call(server.url("/", scheme="https"))
    assert not response.ok
    assert "SSL" in response.error
    assert elapsed < 1.8


def test_plain_http_to_a_tls_speaking_server_is_a_failed_attempt(serve):
    # A TLS server answers a plain request with a TLS alert record: not HTTP.
    server = serve(reply(b"\x15\x03\x01\x00\x02\x02\x46"))
    response, _ = call(server.url("/"))
    assert not response.ok
    assert response.error


def test_silent_server_times_out(serve):
    server = serve(lambda conn, srv: srv.closed.wait(30))
    response, elapsed = call(server.url("/"), timeout_s=0.5)
    assert "Timed out" in response.error
    assert elapsed < 1.3


@pytest.mark.django_db
def test_invalid_json_replies_are_recorded_and_never_crash_delivery(serve):
    ok = serve(reply(http_response(200, b'{"event": {"type": "x", ')))
    bad = serve(reply(http_response(500, b"<html>not json")))
    TriggerFactory(name="ok_hook", type="thing", url=ok.url("/"))
    TriggerFactory(name="bad_hook", type="thing", retries=1, url=bad.url("/"))
    events = {e.trigger_name: e for e in emit("thing", {"n": 1})}

    deliver_event(events["ok_hook"].id)
    row = EventLog.objects.get(id=events["ok_hook"].id)
    # A 2xx is success whatever its body; a body that is not JSON queues no follow-ups.
    assert row.status == EventStatus.PROCESSED
    assert row.invocations.get().response_body == '{"event": {"type": "x", '
    assert EventLog.objects.count() == 2

    deliver_event(events["bad_hook"].id)
    row = EventLog.objects.get(id=events["bad_hook"].id)
    assert row.status == EventStatus.STAGED  # a retry is scheduled
    assert row.last_status_code == 500
    assert "HTTP 500" in row.remark
    assert row.invocations.get().response_body == "<html>not json"


@pytest.mark.django_db
def test_hostile_replies_in_the_pipeline_are_failed_attempts(serve):
    servers = {
        "dribble": serve(dribble(HEAD, interval_s=0.2)),
        "reset": serve(reset),
        "garbage": serve(reply(b"\x00\x01\x02 nonsense\r\n\r\n")),
    }
    for name, server in servers.items():
        TriggerFactory(name=name, type="thing", timeout_ms=800, retries=0, url=server.url("/"))
    started = time.monotonic()
    for event in emit("thing", {}):
        deliver_event(event.id)
    assert time.monotonic() - started < 4
    for row in EventLog.objects.filter(type="thing"):
        assert row.status == EventStatus.FAILED, row.trigger_name
        assert row.last_status_code is None
        invocation = row.invocations.get()
        assert invocation.error_msg
        assert invocation.duration_ms < 1500
