"""Property-based run of the served OpenAPI schema: no 5xx, every response matches the schema."""

from __future__ import annotations

from collections import defaultdict

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from eventing import emit
from eventing.models import EventLog, EventStatus
from tests.factories import EventTypeFactory, TriggerFactory
from tests.support.api_fixtures import make_token
from triggers.models import EventType

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 15


@pytest.fixture
def served_schema(db):
    """The schema as /api/eventing/schema/ serves it; requests go to the in-process WSGI app.

    Like Django's test client, keep the request cycle from closing the test's connection
    (it holds the test transaction). Loaded in a fixture: the pytest plugin's lazy loader
    does not work with this pytest, and loading at import would touch the database.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/eventing/schema/", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def known_objects(db, receiver):
    """Objects for generated requests to hit: types with each rule, a trigger per type."""
    EventTypeFactory(name="default", queue_rule=EventType.QueueRule.ALLOW)
    EventTypeFactory(
        name="order_placed",
        queue_rule=EventType.QueueRule.ALLOW,
        schema={"type": "object", "properties": {"id": {"type": "integer"}}},
    )
    EventTypeFactory(name="secret_stuff", queue_rule=EventType.QueueRule.DENY)
    TriggerFactory(name="orders_hook", type="order_placed", url=receiver.url("/ok"))
    TriggerFactory(name="string", type="string", url=receiver.url("/ok"))
    staged = emit("order_placed", {"id": 1})[0]
    done = emit("order_placed", {"id": 2})[0]
    EventLog.objects.filter(id=done.id).update(status=EventStatus.PROCESSED)
    return {
        "project": ["default", "default", "elsewhere"],
        "name": ["orders_hook", "order_placed", "default", "missing"],
        "id": [str(staged.id), str(done.id), "00000000-0000-0000-0000-000000000000"],
    }


def aim_at_known_objects(case, choice: int, known: dict[str, list[str]]) -> None:
    """Point most generated paths and types at objects that exist, so success paths run too."""
    params = case.path_parameters or {}
    for name, values in known.items():
        if name in params:
            params[name] = values[choice % len(values)]
    bodies = case.body if isinstance(case.body, list) else [case.body]
    for body in bodies:
        if isinstance(body, dict) and "type" in body and choice % 3:
            # A valid type and payload: generation alone rarely finds one.
            body["type"] = "order_placed"
            body["payload"] = {"id": choice}


def restore_queue_rules() -> None:
    """Generated PATCHes may have changed the rules; put back the ones success paths need."""
    for name in ("default", "order_placed"):
        EventType.objects.filter(name=name).update(queue_rule=EventType.QueueRule.ALLOW)


def run_operation(
    operation, headers: dict[str, str], known: dict[str, list[str]], statuses: dict
) -> None:
    """Generate bounded examples for one operation and validate every response."""

    @given(case=operation.as_strategy(), choice=st.integers(min_value=0, max_value=11))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case, choice):
        aim_at_known_objects(case, choice, known)
        restore_queue_rules()
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        statuses[(operation.method.upper(), operation.path)].add(response.status_code)

    check()


@pytest.mark.slow
@pytest.mark.parametrize("who", ["admin", "anonymous"])
def test_api_conforms_to_its_schema(served_schema, known_objects, who):
    # A token acts as its `sub` user; claims such as role "admin" grant nothing.
    User.objects.create_superuser("schemathesis", password="pw-schemathesis-1")
    token = make_token({"sub": "schemathesis"})
    headers = {"Authorization": f"Bearer {token}"} if who == "admin" else {}
    operations = [result.ok() for result in served_schema.get_all_operations()]
    # Deleting goes last, so the other operations still find the known objects.
    operations.sort(key=lambda operation: operation.method.lower() == "delete")
    assert len(operations) >= 15
    failures = []
    statuses: dict[tuple[str, str], set[int]] = defaultdict(set)
    for operation in operations:
        try:
            run_operation(operation, headers, known_objects, statuses)
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
    succeeded = [op for op, codes in statuses.items() if any(200 <= c < 300 for c in codes)]
    if who == "admin":
        # Not a vacuous run: most operations got through to their success path.
        assert len(succeeded) >= 12, "\n".join(map(str, sorted(statuses.items())))
    else:
        # Without credentials only queueing (an `allow` rule) may succeed; managing never.
        queueing = {("POST", "/api/eventing/events/"), ("POST", "/v1/api/{project}/eventing/queue")}
        assert set(succeeded) <= queueing, sorted(statuses.items())
        assert set(succeeded) == queueing
