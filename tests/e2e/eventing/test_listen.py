"""eventing_listen: a real signed delivery is accepted and printed, forged ones get 401."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import jwt
import pytest
import requests
from django.utils import timezone

from eventing.models import EventLog
from eventing.webhooks.listen import verify_delivery
from eventing.webhooks.request import build_request
from tests.factories import TriggerFactory
from tests.processes import ROOT, process_env
from tests.stack import free_port
from tests.testapp.models import Order
from tests.waiting import wait_until


class ListenProcess:
    """`manage.py eventing_listen` in its own process, its output in a file."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.log = Path(tempfile.mkstemp(prefix="listen-", suffix=".log")[1])
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "eventing_listen", "--port", str(self.port), *args],
            cwd=ROOT,
            env=process_env(),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_until(
            lambda: "Listening on" in self.output() or self.proc.poll() is not None,
            message="eventing_listen to start",
        )
        assert self.proc.poll() is None, self.output()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def listener():
    process = ListenProcess()
    yield process
    process.stop()


def signed_request(trigger, payload=None):
    """A delivery exactly as the transport builds it (token, signature, headers)."""
    event = EventLog(
        type="order_placed",
        payload=payload or {"order": 7},
        trigger_name=trigger.name,
        created_at=timezone.now(),
    )
    return build_request(event, trigger, attempt=1)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_real_delivery_is_verified_and_printed(worker, listener):
    trigger = TriggerFactory(
        name="listen_orders", type="DB_INSERT", source="testapp.Order", url=listener.url
    )
    order = Order.objects.create(status="new", note="listen")
    event = wait_until(
        lambda: EventLog.objects.filter(trigger=trigger, status="processed").first(),
        message="the delivery to be processed",
    )
    assert event.last_status_code == 200
    output = wait_until(lambda: str(event.id) in listener.output() and listener.output())
    assert f"DB_INSERT trigger=listen_orders attempt=1 id={event.id}" in output
    assert "✔ X-SC-Token valid (id=eventing, role=SpaceCloud)" in output
    assert "✔ webhook-signature verified with the secret of trigger listen_orders" in output
    assert f'"pk": {order.pk}' in output  # the body, pretty-printed
    assert "REJECTED" not in output
    # The worker's log line about it carries the event id and trigger (structured logging).
    wait_until(
        lambda: f"event_id={event.id} trigger=listen_orders" in worker.tail(400),
        message="the worker's delivery log line",
    )


@pytest.mark.django_db(transaction=True)
def test_forged_token_is_rejected_with_the_reason(listener):
    trigger = TriggerFactory(name="listen_forged")
    request = signed_request(trigger)
    forged = jwt.encode(
        {"id": "eventing", "role": "SpaceCloud", "iat": 1, "exp": 2**31},
        "not-our-secret-0123456789abcdef0123",
        algorithm="HS256",
    )
    headers = {**request.headers, "X-SC-Token": f"Bearer {forged}"}
    response = requests.post(listener.url, data=request.body, headers=headers, timeout=10)
    assert response.status_code == 401
    assert "X-SC-Token" in response.json()["error"]
    wait_until(
        lambda: "✘ REJECTED: Invalid X-SC-Token" in listener.output(),
        message="the rejection to be printed",
    )


@pytest.mark.django_db(transaction=True)
def test_altered_body_fails_the_signature(listener):
    trigger = TriggerFactory(name="listen_altered")
    request = signed_request(trigger, {"amount": 10})
    tampered = request.body.replace(b'"amount":10', b'"amount":99')
    response = requests.post(listener.url, data=tampered, headers=request.headers, timeout=10)
    assert response.status_code == 401
    assert "webhook-signature does not match" in response.json()["error"]
    genuine = requests.post(listener.url, data=request.body, headers=request.headers, timeout=10)
    assert genuine.status_code == 200
    wait_until(lambda: "checked with the secret of trigger listen_altered" in listener.output())


def test_explicit_secret_and_reply_status():
    trigger = TriggerFactory.build(name="not_in_db")
    process = ListenProcess("--secret", trigger.signing_secret, "--reply-status", "503")
    try:
        request = signed_request(trigger)
        response = requests.post(
            process.url, data=request.body, headers=request.headers, timeout=10
        )
        assert response.status_code == 503
        assert response.json() == {"received": True}
        wait_until(lambda: "verified with --secret" in process.output())
    finally:
        process.stop()


def test_verify_without_a_known_secret_checks_the_token_only(settings):
    trigger = TriggerFactory.build(name="unknown_here")
    request = signed_request(trigger)
    verdict = verify_delivery(request.headers, request.body, lookup=lambda name: None)
    assert verdict.accepted
    assert verdict.signature.startswith("not checked (no trigger named 'unknown_here'")
    missing = {k: v for k, v in request.headers.items() if k != "X-SC-Token"}
    rejected = verify_delivery(missing, request.body, lookup=lambda name: None)
    assert not rejected.accepted
    assert rejected.reason == "Missing X-SC-Token."


def test_bad_options_are_refused():
    result = subprocess.run(
        [sys.executable, "manage.py", "eventing_listen", "--secret", "plain", "--port", "0"],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "--secret must be a Standard Webhooks secret" in result.stderr


def test_listener_answers_get_with_a_hint(listener):
    response = requests.get(listener.url, timeout=10)
    assert response.status_code == 200
    assert json.loads(response.content)["listening"] is True
