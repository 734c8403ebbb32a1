"""Input the API must refuse with a 400 naming the field: schemas that fetch, never end or take
too long; payloads nested too deep; values no webhook request can carry; chunked bodies."""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import subprocess
import sys

import pytest
import requests
from rest_framework.test import APIClient

from eventing.models import EventLog
from tests.factories import TriggerFactory
from tests.processes import ROOT, process_env
from tests.stack import free_port, wait_for_port
from tests.support.api_fixtures import EVENTS_URL, QUEUE_URL, TRIGGERS_URL, TYPES_URL
from triggers.models import EventType, Trigger

pytestmark = pytest.mark.django_db


@pytest.fixture
def listener():
    """A TCP socket on loopback that only records whether anyone connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def connected(server: socket.socket) -> bool:
    """Whether a connection is waiting (the request that would have made it has returned)."""
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def stored_type(name: str, schema) -> EventType:
    """A type saved without validation, as rows saved before the schema rules were."""
    TriggerFactory(name=f"{name}_hook", type=name)
    return EventType.objects.create(name=name, queue_rule="allow", schema=schema)


def queue(client: APIClient, event_type: str, payload) -> dict:
    response = client.post(EVENTS_URL, {"type": event_type, "payload": payload}, format="json")
    return {"status": response.status_code, **response.json()}


# Item 5: SSRF and file reads through $ref, recursion, validation cost -------------------------


def test_a_remote_ref_is_refused_on_save_and_never_fetched(staff, anon, listener):
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/schema.json"
    created = staff.post(TYPES_URL, {"name": "remote", "schema": {"$ref": url}}, format="json")
    assert created.status_code == 400
    assert "schema" in created.json()["fields"]
    assert not EventType.objects.filter(name="remote").exists()
    stored_type("remote", {"properties": {"a": {"$ref": url}}})
    answer = queue(anon, "remote", {"a": 1})
    assert answer["status"] == 400
    assert answer["detail"].startswith("payload: The JSON Schema of 'remote' cannot be applied")
    assert not connected(listener)
    assert not EventLog.objects.exists()


def test_a_file_ref_never_reads_the_file(staff, anon, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"type": "string", "description": "TOP-SECRET-CONTENT"}))
    schema = {"$ref": secret.as_uri()}
    created = staff.post(TYPES_URL, {"name": "local_file", "schema": schema}, format="json")
    assert created.status_code == 400
    assert "schema" in created.json()["fields"]
    stored_type("local_file", schema)
    response = anon.post(EVENTS_URL, {"type": "local_file", "payload": 1}, format="json")
    assert response.status_code == 400
    assert b"TOP-SECRET-CONTENT" not in response.content


def test_a_recursive_schema_is_refused_on_save_and_a_400_when_queueing(staff, anon):
    created = staff.post(TYPES_URL, {"name": "loop", "schema": {"$ref": "#"}}, format="json")
    assert created.status_code == 400
    assert "refers to itself" in created.json()["detail"]
    stored_type("loop", {"$ref": "#"})
    answer = queue(anon, "loop", {})
    assert answer["status"] == 400
    assert "refers to itself" in answer["detail"]


def test_a_recursive_schema_that_descends_checks_deep_payloads_without_a_500(anon):
    stored_type(
        "tree",
        {"type": "object", "properties": {"child": {"$ref": "#"}}, "required": ["child"]},
    )
    payload: dict = {}
    for _ in range(99):
        payload = {"child": payload}
    answer = queue(anon, "tree", payload)
    assert answer["status"] == 400
    assert answer["detail"].startswith("payload")


# Before, each of these held the web process for minutes (the schema check had no bound): the
# timeout turns that into a failure; with the bound they answer within the budget.
@pytest.mark.timeout(60)
@pytest.mark.parametrize("pattern", ["^(a+)+$", "^(a|a)+$", "^(a|aa)+$"])
def test_a_backtracking_pattern_is_a_400(anon, staff, pattern):
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": pattern}}}
    assert (
        staff.post(TYPES_URL, {"name": "redos", "schema": schema}, format="json").status_code == 201
    )
    EventType.objects.filter(name="redos").update(queue_rule="allow")
    TriggerFactory(name="redos_hook", type="redos")
    answer = queue(anon, "redos", {"name": "a" * 5000 + "!"})
    assert answer["status"] == 400
    assert answer["detail"].startswith("payload")
    assert queue(anon, "redos", {"name": "aaaa"})["status"] == 201


@pytest.mark.timeout(60)
def test_backtracking_in_property_names_is_a_400(anon):
    stored_type(
        "redos_keys",
        {"patternProperties": {"^(a|a)+$": {}}, "additionalProperties": False},
    )
    answer = queue(anon, "redos_keys", {"a" * 100 + "!": 1})
    assert answer["status"] == 400
    assert answer["detail"].startswith("payload")


@pytest.mark.timeout(60)
def test_unique_items_on_a_large_array_is_checked_in_linear_time(anon):
    # 20,000 objects: jsonschema's pairwise check needs 2e8 comparisons (4,000 took 15 s).
    stored_type("many", {"type": "array", "uniqueItems": True})
    items = [{"n": n, "tags": [n, str(n)]} for n in range(20_000)]
    assert queue(anon, "many", items)["status"] == 201
    answer = queue(anon, "many", [*items, {"tags": [19_999, "19999"], "n": 19_999.0}])
    assert answer["status"] == 400
    assert "non-unique" in answer["detail"]
    assert queue(anon, "many", [1, True, "1", [1], {"1": 1}])["status"] == 201


@pytest.mark.timeout(60)
def test_a_schema_over_the_time_budget_is_a_400(anon, settings):
    settings.EVENTING = {**settings.EVENTING, "SCHEMA_VALIDATION_BUDGET_MS": 50}
    # Each level tries its two branches: 2**30 evaluations per value without a budget.
    defs = {f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"}] * 2} for i in range(30)}
    defs["d30"] = {"type": "string"}
    stored_type("costly", {"$ref": "#/$defs/d0", "$defs": defs})
    answer = queue(anon, "costly", 1)
    assert answer["status"] == 400
    assert "SCHEMA_VALIDATION_BUDGET_MS" in answer["detail"]
    assert queue(anon, "costly", "fine")["status"] == 201


def test_schema_errors_name_the_path_and_stay_short(anon):
    stored_type("short", {"type": "object", "properties": {"list": {"type": "string"}}})
    answer = queue(anon, "short", {"list": list(range(10_000))})
    assert answer["status"] == 400
    assert answer["detail"].startswith("payload.list: [0, 1, 2")
    assert len(answer["detail"]) < 400


# Item 14: the nesting limit applies to the API too ---------------------------------------------


def nested(depth: int):
    value: list | int = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [101, 900])
def test_deeply_nested_payloads_are_refused_everywhere(anon, depth, open_type):
    TriggerFactory(name="hook", type="order_placed")
    body = {"type": "order_placed", "payload": nested(depth)}
    for url, data in [(EVENTS_URL, body), (EVENTS_URL, [body]), (QUEUE_URL, body)]:
        response = anon.post(url, data, format="json")
        assert response.status_code == 400, (url, response.json())
        assert "nested deeper than 100 levels" in response.json()["detail"]
    assert not EventLog.objects.exists()
    assert anon.post(EVENTS_URL, {**body, "payload": nested(99)}, format="json").status_code == 201


def test_a_trigger_test_refuses_a_payload_nested_too_deep(staff, receiver):
    TriggerFactory(name="tested", type="order_placed", url=receiver.url("/ok"))
    response = staff.post(f"{TRIGGERS_URL}tested/test/", {"payload": nested(150)}, format="json")
    assert response.status_code == 400
    assert "nested deeper" in response.json()["detail"]
    assert not EventLog.objects.exists()


# Item 13: values that can never be delivered ---------------------------------------------------

HOOK = {"name": "hook", "type": "order_placed", "url": "https://hooks.example.com/orders"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "https://hooks.example.com/a\r\nX-Evil: 1"}, "url"),
        ({"url": "https://hooks.example.com/a\nb"}, "url"),
        ({"headers": [{"name": "X-Key", "value": "a\r\nX-Evil: 1"}]}, "headers"),
        ({"headers": [{"name": "X-Key", "value": "snowman ☃"}]}, "headers"),
        ({"headers": [{"name": "Host\n", "value": "evil.example"}]}, "headers"),
        ({"signing_secret": "whsec_"}, "signing_secret"),
        ({"signing_secret": "whsec_%%%%"}, "signing_secret"),
        ({"signing_secret": "whsec_" + base64.b64encode(b"short").decode()}, "signing_secret"),
    ],
)
def test_undeliverable_trigger_values_are_a_400_naming_the_field(staff, change, field):
    response = staff.post(TRIGGERS_URL, {**HOOK, **change}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not Trigger.objects.exists()


def test_created_trigger_location_is_its_api_url_not_the_webhook(staff):
    response = staff.post(TRIGGERS_URL, HOOK, format="json")
    assert response.status_code == 201
    assert response["Location"] == "http://testserver/api/eventing/triggers/hook/"


# Item 17: chunked bodies and the docs page ----------------------------------------------------


def post_chunked(body: bytes, *, terminated: bool):
    """POST `body` as a server passes a de-chunked request on: no Content-Length."""
    client = APIClient()
    environ = {
        "CONTENT_LENGTH": "",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
    }
    if terminated:
        environ["wsgi.input_terminated"] = True  # gunicorn's mark: the input ends at the body
    return client.generic("POST", EVENTS_URL, content_type="application/json", **environ)


def test_a_chunked_body_is_read(open_type):
    TriggerFactory(name="hook", type="order_placed")
    body = json.dumps({"type": "order_placed", "payload": {"n": 1}}).encode()
    response = post_chunked(body, terminated=True)
    assert response.status_code == 201, response.json()
    assert EventLog.objects.get().payload == {"n": 1}


def test_a_chunked_body_over_the_limit_is_a_413(open_type, settings):
    settings.EVENTING = {**settings.EVENTING, "MAX_PAYLOAD_BYTES": 1000}
    body = json.dumps({"type": "order_placed", "payload": {"n": "x" * 2000}}).encode()
    response = post_chunked(body, terminated=True)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_a_chunked_body_the_server_cannot_end_is_a_411(open_type):
    body = json.dumps({"type": "order_placed"}).encode()
    response = post_chunked(body, terminated=False)
    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]


@pytest.fixture
def gunicorn(tmp_path):
    """The standalone project under gunicorn (as the image runs it) on a free loopback port."""
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("wb")
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "config.wsgi"],
        cwd=ROOT,
        env=process_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout_s=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        web.terminate()
        web.wait(20)
        log.close()


def chunks(body: bytes, size: int = 4096):
    """The body as a generator, which requests sends with Transfer-Encoding: chunked."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_gunicorn_passes_chunked_bodies_to_the_parser(gunicorn):
    url = gunicorn + QUEUE_URL
    headers = {"Content-Type": "application/json"}
    # Malformed on purpose: the answer shows the parser saw the body (it used to see nothing
    # and answer "type: This field is required").
    broken = requests.post(url, data=chunks(b'{"type": "order_placed", '), headers=headers)
    assert broken.status_code == 400
    assert broken.json()["detail"].startswith("Malformed JSON")
    big = b'{"type": "order_placed", "payload": "' + b"x" * (1024 * 1024) + b'"}'
    too_big = requests.post(url, data=chunks(big), headers=headers)
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "payload_too_large"


def test_docs_page_loads_no_third_party_script(anon):
    response = anon.get("/api/eventing/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-dist" in source for source in sources), sources
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))], sources
    assert "cdn.jsdelivr.net" not in html
