"""eventing.broker: kombu's Redis transport with one client per channel."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from kombu import Connection

BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")

pytestmark = pytest.mark.skipif(not BROKER_URL.startswith("redis://"), reason="needs Redis")


@pytest.fixture
def connection():
    with Connection(BROKER_URL, transport="eventing.broker:RedisTransport") as conn:
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
    assert settings.CELERY_BROKER_TRANSPORT == "eventing.broker:RedisTransport"
