"""Prometheus metrics, /healthz and structured log lines."""

from __future__ import annotations

import datetime as dt
import json
import logging
from unittest import mock

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from eventing import emit
from eventing.delivery.deliver import deliver_event
from eventing.models import EventLog, EventStatus, Heartbeat
from eventing.ops.logs import EventContextFilter, JsonFormatter, KeyValueFormatter
from tests.factories import TriggerFactory

pytestmark = pytest.mark.django_db


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    """Samples of /metrics keyed by (name, sorted labels)."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_emit_counts_only_committed_events(
    client, message_per_event, django_capture_on_commit_callbacks
):
    TriggerFactory(name="metrics_emit", type="metric_probe")
    before = sample(
        scrape(client), "eventing_events_emitted_total", trigger="metrics_emit", type="metric_probe"
    )
    with django_capture_on_commit_callbacks(execute=True):
        emit("metric_probe", {"n": 1})
        emit("metric_probe", {"n": 2})
    with django_capture_on_commit_callbacks(execute=False):
        emit("metric_probe", {"n": 3})  # never committed
    after = sample(
        scrape(client), "eventing_events_emitted_total", trigger="metrics_emit", type="metric_probe"
    )
    assert after - before == 2


def test_events_queued_in_a_batch_are_counted(
    client, message_per_event, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from eventing.recording.emit import EventRequest, emit_batch

    TriggerFactory(name="metrics_batch", type="metric_batch")
    labels = {"trigger": "metrics_batch", "type": "metric_batch"}
    before = sample(scrape(client), "eventing_events_emitted_total", **labels)
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        emit_batch([EventRequest("metric_batch", {"n": n}, now) for n in range(3)])
    after = sample(scrape(client), "eventing_events_emitted_total", **labels)
    assert after - before == 3


def test_delivery_outcomes_latency_and_lag_are_counted(client, receiver, message_per_event):
    ok = TriggerFactory(name="metrics_ok", type="metric_ok", url=receiver.url("/ok"))
    bad = TriggerFactory(
        name="metrics_bad", type="metric_bad", url=receiver.url("/status/500"), retries=0
    )
    before = scrape(client)
    good_event = emit("metric_ok", {})[0]
    EventLog.objects.filter(id=good_event.id).update(
        deliver_at=timezone.now() - dt.timedelta(seconds=2)
    )
    deliver_event(good_event.id)
    deliver_event(emit("metric_bad", {})[0].id)
    after = scrape(client)

    def delta(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("eventing_events_processed_total", trigger=ok.name, type="metric_ok") == 1
    assert delta("eventing_events_failed_total", trigger=bad.name, type="metric_bad") == 1
    assert delta("eventing_invocations_total", trigger=ok.name, status_class="2xx") == 1
    assert delta("eventing_invocations_total", trigger=bad.name, status_class="5xx") == 1
    assert delta("eventing_delivery_duration_seconds_count", trigger=ok.name) == 1
    assert delta("eventing_queue_lag_seconds_count", trigger=ok.name) == 1
    # It was due 2 s before it was claimed: the lag lands above the 1 s bucket.
    assert delta("eventing_queue_lag_seconds_bucket", trigger=ok.name, le="1.0") == 0
    assert delta("eventing_queue_lag_seconds_bucket", trigger=ok.name, le="2.5") == 1


def test_connection_errors_count_as_error_class(client, message_per_event):
    trigger = TriggerFactory(
        name="metrics_refused", type="metric_refused", url="http://127.0.0.1:9/nothing", retries=1
    )
    before = scrape(client)
    deliver_event(emit("metric_refused", {})[0].id)
    after = scrape(client)
    labels = {"trigger": trigger.name, "status_class": "error"}
    assert (
        sample(after, "eventing_invocations_total", **labels)
        - sample(before, "eventing_invocations_total", **labels)
    ) == 1
    labels = {"trigger": trigger.name, "type": "metric_refused"}
    assert (
        sample(after, "eventing_events_retried_total", **labels)
        - sample(before, "eventing_events_retried_total", **labels)
    ) == 1


def test_backlog_and_oldest_due_come_from_the_database(client, message_per_event):
    TriggerFactory(type="metric_backlog")
    first, second = emit("metric_backlog", {})[0], emit("metric_backlog", {})[0]
    emit("metric_backlog", {}, delay_s=3600)  # staged but not due
    EventLog.objects.filter(id=first.id).update(
        deliver_at=timezone.now() - dt.timedelta(seconds=120)
    )
    EventLog.objects.filter(id=second.id).update(status=EventStatus.PROCESSING)
    Heartbeat.objects.create(name="sweep", at=timezone.now() - dt.timedelta(seconds=30))
    samples = scrape(client)
    assert sample(samples, "eventing_backlog", status="staged") == 2
    assert sample(samples, "eventing_backlog", status="processing") == 1
    assert sample(samples, "eventing_backlog", status="intent") == 0
    assert 119 <= sample(samples, "eventing_oldest_due_seconds") < 180
    assert 29 <= sample(samples, "eventing_last_sweep_age_seconds") < 90


def test_metrics_token_is_required_when_set(client, settings):
    settings.EVENTING = {**settings.EVENTING, "METRICS_TOKEN": "s3cret-metrics"}
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-metrics")


def test_healthz_ok_with_a_recent_sweep(client):
    Heartbeat.objects.create(name="sweep", at=timezone.now())
    Heartbeat.objects.create(name="worker:w1@host", at=timezone.now())
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["ok"] is True
    assert body["database"] == {"ok": True}
    assert body["broker"] == {"ok": True}
    assert body["sweep"]["ok"] is True
    assert body["sweep"]["age_s"] < 5


def test_healthz_503_when_the_sweep_is_stale(client, settings):
    settings.EVENTING = {**settings.EVENTING, "SWEEP_INTERVAL_S": 1}
    Heartbeat.objects.create(name="sweep", at=timezone.now() - dt.timedelta(seconds=11))
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["sweep"]["stale_after_s"] == 10
    assert "beat" in body["sweep"]["error"]
    assert body["database"]["ok"] is True


def test_healthz_503_when_the_sweeper_never_ran(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "never ran" in response.json()["sweep"]["error"]


def test_healthz_can_skip_the_sweep_for_liveness(client):
    response = client.get("/healthz?checks=database,broker")
    assert response.status_code == 200
    assert set(response.json()) == {"ok", "database", "broker"}
    bad = client.get("/healthz?checks=database,disk")
    assert bad.status_code == 400
    assert "disk" in bad.json()["checks"]


def test_unreachable_broker_is_503_and_cached(client, settings):
    Heartbeat.objects.create(name="sweep", at=timezone.now())
    with mock.patch(
        "celery.current_app.connection_for_write", side_effect=ConnectionRefusedError("refused")
    ) as connect:
        first = client.get("/healthz")
        second = client.get("/healthz")
    assert first.status_code == second.status_code == 503
    assert "refused" in first.json()["broker"]["error"]
    assert connect.call_count == 1  # the second probe used the cached answer


def make_record(**extra) -> logging.LogRecord:
    record = logging.LogRecord(
        "eventing.delivery.deliver", logging.WARNING, __file__, 1, "Event %s failed", ("abc",), None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    EventContextFilter().filter(record)
    return record


def test_key_value_lines_carry_event_id_and_trigger():
    line = KeyValueFormatter("%(levelname)s %(message)s").format(
        make_record(event_id="6f1c", trigger="orders_hook")
    )
    assert line == "WARNING Event abc failed event_id=6f1c trigger=orders_hook"
    assert KeyValueFormatter("%(message)s").format(make_record()) == "Event abc failed"


def test_json_lines_carry_event_id_and_trigger():
    entry = json.loads(JsonFormatter().format(make_record(event_id="6f1c", trigger="hook")))
    assert entry["event_id"] == "6f1c"
    assert entry["trigger"] == "hook"
    assert entry["message"] == "Event abc failed"
    assert entry["level"] == "WARNING"
    assert entry["time"].endswith("Z")
    assert "event_id" not in json.loads(JsonFormatter().format(make_record()))


def test_delivery_logs_carry_the_event(receiver, message_per_event, caplog):
    trigger = TriggerFactory(type="metric_log", url=receiver.url("/ok"))
    event = emit("metric_log", {})[0]
    with caplog.at_level(logging.INFO, logger="eventing.delivery.deliver"):
        deliver_event(event.id)
    records = [r for r in caplog.records if getattr(r, "event_id", None) == str(event.id)]
    assert records, caplog.text
    assert records[0].trigger == trigger.name


def test_a_worker_serves_its_own_metrics_on_the_configured_port(
    settings, message_per_event, receiver
):
    import requests

    from eventing.ops.metrics import start_worker_exporter
    from tests.stack import free_port

    port = free_port()
    settings.EVENTING = {**settings.EVENTING, "WORKER_METRICS_PORT": port}
    start_worker_exporter()  # what the worker's bootstep calls (eventing.ops.bootsteps)
    trigger = TriggerFactory(name="metrics_worker", type="metric_worker", url=receiver.url("/ok"))
    deliver_event(emit("metric_worker", {})[0].id)
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert f'eventing_invocations_total{{status_class="2xx",trigger="{trigger.name}"}} 1.0' in text
    # The database gauges are the web's job: a worker does not query them on every scrape.
    assert "eventing_backlog" not in text


EMIT_ONE = "import eventing; eventing.emit('metric_multi', {})"


@pytest.mark.django_db(transaction=True)
def test_multiprocess_mode_sums_the_processes(tmp_path, monkeypatch):
    import subprocess
    import sys

    from eventing.ops.metrics import render
    from tests.processes import ROOT, process_env

    # Due in an hour: recorded, but no broker message is sent.
    TriggerFactory(name="metrics_multi", type="metric_multi", delay_s=3600)
    env = process_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    for _ in range(2):  # two processes, like two gunicorn workers
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", EMIT_ONE],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = render()[0].decode()
    assert 'eventing_events_emitted_total{trigger="metrics_multi",type="metric_multi"} 2.0' in text
    assert 'eventing_backlog{status="staged"} 2.0' in text
