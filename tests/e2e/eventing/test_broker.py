"""eventing.dispatch.broker: kombu's Redis transport with one client per channel."""

from __future__ import annotations

import os
import subprocess

import pytest
from django.conf import settings
from kombu import Connection, Consumer, Exchange, Queue
from kombu.common import ignore_errors

from tests import stack

BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")

pytestmark = pytest.mark.skipif(not BROKER_URL.startswith("redis://"), reason="needs Redis")


@pytest.fixture
def connection():
    with Connection(BROKER_URL, transport="eventing.dispatch.broker:RedisTransport") as conn:
        yield conn


def test_a_channel_reuses_one_client_until_its_pool_is_replaced(connection):
    channel = connection.channel()
    with channel.conn_or_acquire() as first:
        assert first.ping()
    with channel.conn_or_acquire() as second:
        assert second is first
    channel._disconnect_pools()  # what kombu does when the connection drops
    with channel.conn_or_acquire() as third:
        assert third is not first
        assert third.ping()


def test_messages_round_trip_through_it(connection):
    queue = connection.SimpleQueue("eventing-test-broker")
    try:
        for n in range(3):
            queue.put({"n": n})
        got = []
        for _ in range(3):
            message = queue.get(timeout=5)
            got.append(message.payload["n"])
            message.ack()
        assert got == [0, 1, 2]
    finally:
        queue.clear()
        queue.close()


def test_the_standalone_project_uses_it_for_redis():
    assert settings.CELERY_BROKER_TRANSPORT == "eventing.dispatch.broker:RedisTransport"


@pytest.fixture
def own_redis():
    """A Redis of this test's own (the test stops it)."""
    port = stack.free_port()
    server = subprocess.Popen(stack.redis_command(port), stdout=subprocess.DEVNULL)
    try:
        stack.wait_for_port(port)
        yield port
    finally:
        server.kill()
        server.wait(10)


@pytest.mark.parametrize(
    ("transport", "survives"), [("redis", False), ("eventing.dispatch.broker:RedisTransport", True)]
)
def test_a_broker_lost_mid_brpop_is_a_connection_error_not_a_crash(own_redis, transport, survives):
    """What a Celery worker does when Redis goes away under a busy consumer, step by step.

    kombu 5.7's own transport raises AttributeError ('NoneType' … 'hostname') on the second
    close, which Celery's `ignore_errors` lets through and the worker dies of; ours does not.
    If the stock case stops raising after a kombu upgrade, upstream fixed it: drop our
    Channel._get_pool.
    """
    url = f"redis://127.0.0.1:{own_redis}/0"
    tasks = Queue("tasks", Exchange("tasks"), "tasks")
    conn = Connection(url, transport=transport)
    with conn.Producer() as producer:
        producer.publish({"n": 1}, exchange=tasks.exchange, routing_key="tasks", declare=[tasks])
    received = []
    Consumer(conn, [tasks], callbacks=[lambda body, message: received.append(message)]).consume()
    conn.drain_events(timeout=5)
    channel = conn.default_channel
    assert len(received) == 1
    assert channel.qos._delivered, "the message is taken and not yet acked"
    # Celery's remote control: a fanout queue on a second channel (its close talks to Redis).
    control = conn.channel()
    Consumer(control, [Queue("ctl", Exchange("ctl", type="fanout"), auto_delete=True)]).consume()
    channel._brpop_start()  # the worker's event loop waits in BRPOP
    stack.shutdown_redis(own_redis)

    # Celery's consumer on a connection loss (on_connection_error_after_connected):
    conn.collect(socket_timeout=2)
    if survives:
        ignore_errors(conn, conn.close)
    else:
        with pytest.raises(AttributeError, match="hostname"):
            ignore_errors(conn, conn.close)
