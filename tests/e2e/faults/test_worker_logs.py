"""A real worker logging at DEBUG never prints a secret, whatever its deliveries meet."""

from __future__ import annotations

from django.conf import settings as django_settings

from eventing import emit
from eventing.models import EventStatus
from tests.factories import TriggerFactory
from tests.support.faults import FAULT_MARKS, wait_settled

pytestmark = FAULT_MARKS

ENV_HEADER_VALUE = "envkey-worker-91c3e7a2"
URL_TOKEN = "urltoken-worker-5b7d0f4e"


def test_worker_log_holds_no_secret(cluster, receiver):
    headers = [{"name": "X-Api-Key", "value_from_env": "HOOK_API_KEY"}]
    path = "/ok/secret?token={{HOOK_URL_TOKEN}}"
    good = TriggerFactory(name="good", url=receiver.url(path), headers=headers, retries=0)
    dead = TriggerFactory(name="dead", url="http://127.0.0.1:9" + path, headers=headers, retries=0)
    worker = cluster.worker(
        "fw1", HOOK_API_KEY=ENV_HEADER_VALUE, HOOK_URL_TOKEN=URL_TOKEN, LOG_LEVEL="DEBUG"
    )
    ids = [str(e.id) for e in emit("order_placed", {"n": 1})]
    wait_settled(ids)

    [got] = receiver.on(f"/ok/secret?token={URL_TOKEN}")
    assert got.headers["X-Api-Key"] == ENV_HEADER_VALUE  # really sent
    log = worker.log_path.read_text()
    assert "DEBUG" in log  # the worker did log at DEBUG
    assert f"{EventStatus.FAILED}" in log  # and logged the failed delivery
    for secret in (
        ENV_HEADER_VALUE,
        URL_TOKEN,
        good.signing_secret,
        dead.signing_secret,
        *django_settings.EVENTING["SECRETS"],
        got.headers["X-SC-Token"].split()[1],
    ):
        assert secret not in log
