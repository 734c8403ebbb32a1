"""SQL statements per operation: deliveries (one event, a batch), saves and an API batch.

    python -m tests.stack postgres -- python -m bench.bench_statements

Statement counts are the cost model of the hot paths (each is a round trip and, in
autocommit, a commit); they live here rather than in the tests, which assert behaviour. The
once-a-second queue-lag note (`eventing_heartbeats`) is left out of the delivery counts.
Targets (PostgreSQL): one event delivered in 2 statements whatever its outcome (claim, then
the invocation riding in the finishing UPDATE); a batch of successes in 2; a batch of retries
in 2 plus one UPDATE per row (each has its own due time); a save() of a model without triggers
in 1 (the INSERT itself); no SELECT of an old row on an insert; an API batch of 1,000 events in
bulk INSERTs of 500 rows.
"""

from __future__ import annotations

import uuid

from bench import common

REFUSED_URL = "http://127.0.0.1:9/refused"  # nothing listens: a failed attempt, retried
HEARTBEATS = "eventing_heartbeats"


def statements(run) -> list[str]:
    """The SQL `run` executes on the default database (DEBUG is off: captured explicitly)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        run()
    return [q["sql"] for q in captured.captured_queries]


def delivery_statements(run) -> int:
    """Statements of a delivery, the queue-lag note aside."""
    return sum(1 for sql in statements(run) if HEARTBEATS not in sql)


def staged(trigger, count: int) -> list:
    """`count` due rows of `trigger`, recorded without broker messages."""
    from django.utils import timezone

    from eventing.recording.emit import EventRequest, emit_batch

    now = timezone.now()
    items = emit_batch(
        [EventRequest(trigger.type, {"n": n}, now) for n in range(count)], publish=False
    )
    return [item.rows[0] for item in items]


def measure_delivery(port: int) -> dict:
    """Statements to deliver one event and a batch of 50, answered 200 or refused (a retry)."""
    from triggers.models import Trigger

    ok = Trigger.objects.create(name="bench_ok", type="bench_ok", url=f"http://127.0.0.1:{port}/")
    refused = Trigger.objects.create(name="bench_refused", type="bench_refused", url=REFUSED_URL)
    one_ok, batch_ok = delivery_of(ok)
    one_retry, batch_retry = delivery_of(refused)
    return {
        "one_event_success": one_ok,
        "one_event_retry": one_retry,
        "batch_of_50_success": batch_ok,
        "batch_of_50_retry": batch_retry,
    }


def delivery_of(trigger) -> tuple[int, int]:
    """Most statements one event of `trigger` took (of 3), and those of a batch of 50."""
    from eventing.delivery.deliver import deliver_event, deliver_events

    warm, *events = staged(trigger, 4)
    deliver_event(warm.id, trigger.pk)  # loads the trigger into the cache
    one = max(delivery_statements(lambda e=e: deliver_event(e.id, trigger.pk)) for e in events)
    batch = [str(e.id) for e in staged(trigger, 50)]
    return one, delivery_statements(lambda: deliver_events(batch, trigger.pk))


def measure_saves() -> dict:
    """Statements of save() without triggers, and whether an insert reads an old row."""
    from eventing.store.trigger_cache import current_index, invalidate
    from tests.testapp.models import Document, Untracked
    from triggers.models import Trigger

    Trigger.objects.create(name="bench_doc_update", type="DB_UPDATE", source="testapp.Document")
    Trigger.objects.create(name="bench_doc_insert", type="DB_INSERT", source="testapp.Document")
    invalidate()
    current_index()  # warm the trigger index
    untracked = statements(lambda: Untracked.objects.create(value=1))
    insert = statements(lambda: Document.objects.create(title=uuid.uuid4().hex))
    return {
        "save_without_triggers": len(untracked),
        "insert_reads_old_row": any(
            sql.lstrip().upper().startswith("SELECT") and "testapp_document" in sql
            for sql in insert
        ),
    }


def measure_api_batch() -> dict:
    """Statements of POST /api/eventing/events/ with 1,000 events."""
    from django.contrib.auth.models import User
    from django.test.utils import override_settings
    from rest_framework.test import APIClient

    from triggers.models import EventType, Trigger

    EventType.objects.create(name="bench_api", queue_rule="allow")
    Trigger.objects.create(name="bench_api_hook", type="bench_api", url=REFUSED_URL)
    client = APIClient()
    client.force_authenticate(User.objects.create(username=f"bench-{uuid.uuid4().hex[:8]}"))
    batch = [{"type": "bench_api", "payload": {"n": n}} for n in range(1000)]
    responses = []
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        sql = statements(
            lambda: responses.append(client.post("/api/eventing/events/", batch, format="json"))
        )
    assert responses[0].status_code == 201, responses[0].content
    inserts = [s for s in sql if s.lstrip().upper().startswith("INSERT") and "event_logs" in s]
    return {"api_batch_of_1000": len(sql), "api_batch_of_1000_event_inserts": len(inserts)}


def main() -> dict:
    common.setup_django()
    proc, port = common.start_receiver()
    try:
        common.reset_events()
        result = {**measure_delivery(port), **measure_saves(), **measure_api_batch()}
    finally:
        proc.terminate()
        proc.wait()
        common.reset_events()
    common.write_result("statements", result)
    return result


if __name__ == "__main__":
    print(main())
