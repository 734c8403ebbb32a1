"""Each pytest-xdist worker of a run gets a stack of its own on the run's shared servers.

`make test` runs a stage with `pytest -n N`: N worker processes share one PostgreSQL server and
one Redis. pytest-django already gives each worker its own test database (`test_eventing_gw0`,
…). This module gives each its own Redis databases (the broker and, next to it, the cache), so
one worker's Celery processes never take another's messages and a purge empties only its own
queues, and its own var folder (the SQLite test file, the filesystem broker's folders, media).

It runs when tests/settings.py is imported, before the project's settings read the
environment, and it changes os.environ: the Celery processes a test starts inherit it (and,
finding it applied, leave it as it is).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# Redis databases per worker: the broker's and the cache's (config/settings.py puts the cache
# on the broker's database + 1). Worker gwN takes 2N + 2 and 2N + 3; 0 and 1 stay the serial
# run's. tests/stack.py starts Redis with enough databases for REDIS_WORKERS workers.
REDIS_DATABASES_PER_WORKER = 2
REDIS_WORKERS = 16


def worker_number(worker: str) -> int:
    """0 for "gw0", 1 for "gw1", …"""
    return int(worker.removeprefix("gw"))


def redis_url_for(url: str, number: int) -> str:
    """The broker URL `url` moved to worker `number`'s database."""
    if number >= REDIS_WORKERS:
        raise RuntimeError(f"at most {REDIS_WORKERS} xdist workers fit the test Redis")
    database = REDIS_DATABASES_PER_WORKER * (number + 1)
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def isolate_xdist_worker(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Point this xdist worker (and its children) at its own broker, cache and var folder.

    Returns the worker's name ("gw0", …), or None outside xdist.
    """
    worker = environ.get("PYTEST_XDIST_WORKER")
    if not worker or environ.get("EVENTING_TEST_ISOLATED") == worker:
        return worker  # not parallel, or a child process of a worker that did this already
    environ["EVENTING_TEST_ISOLATED"] = worker
    number = worker_number(worker)
    base = Path(environ.get("EVENTING_VAR_DIR") or Path(__file__).resolve().parents[2] / "var")
    environ["EVENTING_VAR_DIR"] = str(base / worker)
    broker = environ.get("CELERY_BROKER_URL", "")
    if broker.startswith("redis://"):
        environ["CELERY_BROKER_URL"] = redis_url_for(broker, number)
    elif broker.startswith("amqp://"):
        # One vhost per worker would need rabbitmqctl per worker: the RabbitMQ stage runs serially.
        raise RuntimeError("the RabbitMQ stage runs without -n: its workers would share queues")
    return worker
