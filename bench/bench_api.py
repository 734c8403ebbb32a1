"""Benchmark of the batch endpoint: events accepted per second for batches of 1, 100 and 1,000.

    python bench/bench_api.py                        # SQLite + embedded broker, in a temp dir
    python -m tests.stack postgres -- python bench/bench_api.py   # PostgreSQL + Redis

Each request goes through the whole stack in-process (middleware, JWT auth, JSON parsing,
validation, one transaction with bulk inserts, broker publish on commit). One trigger matches,
so every event is one row and one broker message. Results are appended to
bench/results/api_batch.json (one entry per run, keyed by database and broker).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "api_batch.json"


def ensure_postgres_database() -> None:
    """Create the database DATABASE_URL names when it is a fresh PostgreSQL server."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import psycopg2
    from psycopg2 import sql

    base, _, name = url.rpartition("/")
    try:
        psycopg2.connect(url).close()
    except psycopg2.OperationalError:
        admin = psycopg2.connect(f"{base}/postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        admin.close()


def setup_django(var_dir: str) -> None:
    """Standalone settings, with the SQLite file and embedded broker in `var_dir`."""
    ensure_postgres_database()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["EVENTING_VAR_DIR"] = var_dir
    os.environ.setdefault("EVENTING_SECRETS", "bench-secret-0123456789abcdef0123456789")
    # API bearer tokens are verified with the client secrets, never the webhook signing ones.
    os.environ.setdefault("EVENTING_CLIENT_SECRETS", "bench-client-0123456789abcdef0123456789")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def prepare():
    """One open custom type with one trigger, and a client with a staff JWT."""
    import jwt
    from django.conf import settings
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    from triggers.models import EventType, Trigger

    EventType.objects.update_or_create(name="bench_event", defaults={"queue_rule": "allow"})
    Trigger.objects.update_or_create(
        name="bench_hook", defaults={"type": "bench_event", "url": "http://127.0.0.1:9/hook"}
    )
    User.objects.get_or_create(username="bench", defaults={"is_staff": True})
    token = jwt.encode(
        {"sub": "bench", "exp": int(time.time()) + 3600},
        settings.EVENTING["CLIENT_SECRETS"][0],
        algorithm="HS256",
    )
    client = APIClient(HTTP_HOST="localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def run_size(client, size: int, requests: int) -> dict:
    """`requests` POSTs of `size` events each; events/s per request, median and spread."""
    body = [
        {
            "type": "bench_event",
            "payload": {"order_id": n, "total": "12.50", "lines": [{"sku": "A1", "qty": 2}]},
        }
        for n in range(size)
    ]
    payload = body if size > 1 else body[0]
    client.post("/api/eventing/events/", payload, format="json")  # warm-up
    rates, seconds = [], []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.post("/api/eventing/events/", payload, format="json")
        elapsed = time.perf_counter() - started
        if response.status_code != 201:
            raise SystemExit(f"Batch of {size}: HTTP {response.status_code} {response.content!r}")
        rates.append(size / elapsed)
        seconds.append(elapsed)
    return {
        "batch_size": size,
        "requests": requests,
        "events_per_s_median": round(statistics.median(rates), 1),
        "events_per_s_min": round(min(rates), 1),
        "events_per_s_max": round(max(rates), 1),
        "request_ms_median": round(statistics.median(seconds) * 1000, 2),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,100,1000")
    parser.add_argument(
        "--events",
        type=int,
        default=5000,
        help="Events per size (requests = events / size, at least 5).",
    )
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument(
        "--without-broker",
        action="store_true",
        help="Skip publishing on commit (the sweeper would send them): isolates API + database.",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eventing-bench-") as var_dir:
        setup_django(var_dir)
        from django.conf import settings
        from django.db import connection

        from eventing.models import EventLog

        client = prepare()
        if args.without_broker:
            from eventing.dispatch import publish as enqueue

            enqueue.publish_rows = lambda rows, *, using: 0
        results = [
            run_size(client, size, max(5, args.events // size))
            for size in (int(s) for s in args.sizes.split(","))
        ]
        recorded = EventLog.objects.count()
        database = connection.vendor
        broker = "none" if args.without_broker else settings.CELERY_BROKER_URL.split(":", 1)[0]
    run = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "database": database,
        "broker": broker,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "rows_recorded": recorded,
        "results": results,
    }
    for item in results:
        print(
            f"{database}+{broker} batch {item['batch_size']:>5}: "
            f"{item['events_per_s_median']:>9.1f} events/s (median of {item['requests']}, "
            f"{item['request_ms_median']} ms per request)"
        )
    output = Path(args.output)
    history = json.loads(output.read_text()) if output.exists() else []
    history.append(run)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(history, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
