"""Space Cloud's own JS client (npm `space-api` 0.19.3) drives the queue endpoint end to end.

The client lives in tests/space_cloud/node_modules (`npm ci` there; `make test` does it). Without
it the test skips locally, and fails in CI (`CI=true` or EVENTING_REQUIRE_SERVICES=1, as .ci/run
sets), where skipping would hide a regression.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from typing import Any

import jwt
import pytest
from django.conf import settings as django_settings

from eventing.conf import settings as eventing_settings
from eventing.models import EventLog
from tests.factories import EventTypeFactory, TriggerFactory
from tests.processes import ROOT
from tests.support.api_fixtures import make_token

CLIENT_DIR = ROOT / "tests" / "space_cloud"
SCRIPT = CLIENT_DIR / "queue_events.js"
CLIENT_PACKAGE = CLIENT_DIR / "node_modules" / "space-api" / "package.json"


def missing_client() -> str | None:
    """Why the JS client cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not CLIENT_PACKAGE.exists():
        return f"space-api is not installed: run `npm ci` in {CLIENT_DIR}"
    return None


@pytest.fixture
def js_client():
    """A function running the node script with the given calls; skip (fail in CI) without it."""
    why = missing_client()
    if why is not None:
        in_ci = os.environ.get("CI", "").lower() == "true"
        if in_ci or os.environ.get("EVENTING_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Space Cloud JS client test cannot run in CI: {why}")
        pytest.skip(why)

    def run(url: str, calls: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        spec = {"url": url, "project": "default", "calls": calls}
        done = subprocess.run(
            ["node", str(SCRIPT)],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=CLIENT_DIR,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return {result["name"]: result for result in json.loads(done.stdout)}

    return run


def parse_time(value: str) -> dt.datetime:
    """An ISO 8601 UTC time as JavaScript and CloudEvents write it."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_space_cloud_js_client_queues_to_a_real_receiver(js_client, live_server, worker, receiver):
    EventTypeFactory(name="sc_open", queue_rule="allow")
    EventTypeFactory(name="sc_members", queue_rule="authenticated")
    EventTypeFactory(name="sc_sync", queue_rule="allow")
    TriggerFactory(name="open_hook", type="sc_open", url=receiver.url("/ok/open"))
    TriggerFactory(name="members_hook", type="sc_members", url=receiver.url("/ok/members"))
    receiver.replies["/reply/sync"] = {"response": {"greeting": "hello", "n": 3}}
    TriggerFactory(name="sync_hook", type="sc_sync", url=receiver.url("/reply/sync"))
    member_token = make_token({"id": "app-user-7", "role": "user"})  # a Space Cloud app token
    dated_for = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).replace(microsecond=0)

    results = js_client(
        live_server.url,
        [
            {"name": "plain", "type": "sc_open", "payload": {"kind": "plain"}},
            {"name": "delayed", "type": "sc_open", "payload": {"kind": "delayed"}, "delay": 1500},
            {
                "name": "dated",
                "type": "sc_open",
                "payload": {"kind": "dated"},
                "date": dated_for.isoformat().replace("+00:00", "Z"),
            },
            {
                "name": "allow_bad_token",
                "type": "sc_open",
                "payload": {"kind": "allow_bad_token"},
                "token": "not-a-jwt",
            },
            {"name": "members_no_token", "type": "sc_members", "payload": {"kind": "refused"}},
            {
                "name": "members_token",
                "type": "sc_members",
                "payload": {"kind": "member"},
                "token": member_token,
            },
            {
                "name": "sync",
                "type": "sc_sync",
                "payload": {"kind": "sync"},
                "synchronous": True,
            },
        ],
    )

    statuses = {name: result["status"] for name, result in results.items()}
    assert statuses == {
        "plain": 200,
        "delayed": 200,
        "dated": 200,
        "allow_bad_token": 200,
        "members_no_token": 401,
        "members_token": 200,
        "sync": 200,
    }, results
    assert results["sync"]["data"]["result"] == {"greeting": "hello", "n": 3}
    assert "authenticated callers only" in results["members_no_token"]["data"]["detail"]

    open_calls = receiver.wait_for("/ok/open", count=4)
    [member_call] = receiver.wait_for("/ok/members")
    [sync_call] = receiver.on("/reply/sync")
    received = {call.json()["data"]["kind"]: call for call in [*open_calls, member_call, sync_call]}
    assert set(received) == {"plain", "delayed", "dated", "allow_bad_token", "member", "sync"}

    # Delivery times: a delay counts from the client's timestamp, a date is kept to the ms.
    delayed_sent = parse_time(results["delayed"]["sentAt"])
    delayed_at = dt.datetime.fromtimestamp(received["delayed"].at, dt.UTC)
    assert delayed_at >= delayed_sent + dt.timedelta(milliseconds=1500)
    delayed_due = parse_time(received["delayed"].json()["time"])
    assert delayed_sent + dt.timedelta(milliseconds=1500) <= delayed_due <= delayed_at
    assert parse_time(received["dated"].json()["time"]) == dated_for
    assert dt.datetime.fromtimestamp(received["dated"].at, dt.UTC) >= dated_for

    for kind, call in received.items():
        token = call.headers["X-SC-Token"].removeprefix("Bearer ")
        claims = jwt.decode(token, django_settings.EVENTING["SECRETS"][0], algorithms=["HS256"])
        assert claims["role"] == "SpaceCloud", kind
        assert claims["id"] == eventing_settings.INSTANCE_ID, kind
        assert call.json()["specversion"] == "1.0", kind
    assert not EventLog.objects.filter(payload__kind="refused").exists()
