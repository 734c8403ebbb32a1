"""kombu's Redis and filesystem transports, made safe for a worker that runs for weeks.

Redis: reuse one Redis client per channel and survive a broker outage.

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

Filesystem (the embedded broker): kombu creates `<name>.msg` and only then writes into it, so a
worker polling the folder in between moves the empty file away and dies on a JSONDecodeError
(seen in CI, kombu 5.7). Messages here are written under a name no consumer matches and renamed
into place, which is atomic on POSIX; a file that still does not parse is skipped with a
warning instead of killing the worker (the sweeper re-sends its events from their rows).
"""

from __future__ import annotations

import logging
import os
import uuid
from contextlib import contextmanager
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, redis
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)


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


class FilesystemChannel(filesystem.Channel):
    """A filesystem channel whose messages appear in the folder only once fully written."""

    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"  # consumers match names ending in ".<queue>.msg" only
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        # Each failing call has consumed one file, so this ends with a message or Empty.
        while True:
            try:
                return super()._get(queue)
            except ValueError as exc:
                logger.warning("Skipped an unreadable message file in queue %r: %s", queue, exc)


class FilesystemTransport(filesystem.Transport):
    """The filesystem transport with FilesystemChannel above."""

    Channel = FilesystemChannel
    # A folder has no host. kombu's default ("localhost") made every connection to
    # `filesystem://` warn "No hostname was supplied" (on each publish of `manage.py shell`).
    default_connection_params: dict = {}
