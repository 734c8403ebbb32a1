"""kombu's Redis transport, reusing one Redis client per channel and surviving a broker outage.

kombu builds a new `redis.Redis` client for every publish and every ack; building one fills a
table of ~170 response callbacks, a third of the CPU a publish costs. The client is only a
front for the channel's connection pool (which is thread-safe), so one per channel serves.
Used by the standalone project for `redis://` brokers (CELERY_BROKER_TRANSPORT); any project
can opt in the same way.

A broker outage must not kill the worker. When the connection to Redis drops mid-burst, Celery
collects the kombu Connection (which detaches the transport: `transport.client = None`) and
then closes it again; the second close reaches a channel that the first could not close (it
was waiting on BRPOP), whose `restore_unacked` rebuilds the pool from `transport.client` and
dies on `None.hostname` with an AttributeError that Celery treats as unrecoverable (kombu 5.7,
upstream code path, not this subclass's client sharing). The channel here raises a connection
error instead, which Celery ignores before reconnecting: the unacked messages could not be
restored on a dead broker anyway (Redis keeps them in its unacked hash for restore_visible,
and the sweeper re-sends whatever the broker lost).
"""

from __future__ import annotations

from contextlib import contextmanager

from kombu.transport import redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(redis.Channel):
    """A Redis channel whose commands share one client (rebuilt if the pool is replaced)."""

    _shared_client = None

    @contextmanager
    def conn_or_acquire(self, client=None):
        if client:
            yield client
            return
        pool = self.pool
        shared = self._shared_client
        if shared is None or shared.connection_pool is not pool:
            shared = self._shared_client = self._create_client()
        yield shared

    def _get_pool(self, asynchronous=False):
        # kombu's _connparams reads `self.connection.client.hostname`; once the kombu Connection
        # has been closed that is None, and the AttributeError would kill the worker.
        transport = self.connection
        if transport is None or transport.client is None:
            raise RedisConnectionError("the broker connection is closed: no new Redis pool")
        return super()._get_pool(asynchronous=asynchronous)


class RedisTransport(redis.Transport):
    """The Redis transport with Channel above."""

    Channel = Channel
