"""Payload search on a large table: API and Mission Control answers with 1M events.

    python -m tests.stack postgres -- python -m bench.bench_search [--rows 1000000]

Loads the rows into a database of its own with one generate_series INSERT (DB_UPDATE-shaped
payloads: customer_id, new.status, …), runs the migrations' GIN index (jsonb_path_ops), then
times each query several times through Django's test client with the index and, side by side
in the same run, without it. Medians land in bench/results/search.json; the target is under
one second per answer with the index.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from bench import common

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "search.json"
TARGET_S = 1.0
BENCH_DB = "bench_search"
CUSTOMERS = 50_000

QUERIES = {
    "api_customer_id": "/api/eventing/events/?payload__customer_id=4242",
    "api_nested_rare_status": "/api/eventing/events/?payload__new__status=refunded",
    "api_nested_common_status": "/api/eventing/events/?payload__new__status=paid",
    "api_two_filters": "/api/eventing/events/?payload__customer_id=4242&payload__new__status=paid",
    "api_no_match": "/api/eventing/events/?payload__customer_id=999999999",
    "mission_control_customer_id": "/mission-control/eventing/eventlog/?payload__customer_id=4242",
    "api_invocations_trigger_500": "/api/eventing/invocations/?trigger=orders&status_code=500",
}

# Statuses: paid 40 %, new 30 %, shipped 25 %, cancelled 4 %, refunded 1 %.
LOAD_SQL = """
INSERT INTO event_logs (id, batch_id, type, trigger_id, trigger_name, source, payload, status,
    attempts, deliver_at, enqueued_at, locked_until, created_at, processed_at,
    last_status_code, remark, idempotency_key)
SELECT gen_random_uuid(), gen_random_uuid(), 'DB_UPDATE', t.id, t.name, 'shop.Order',
    jsonb_build_object(
        'db', 'default', 'model', 'shop.Order', 'table', 'shop_order', 'pk', i,
        'customer_id', i %% %(customers)s,
        'old', jsonb_build_object('id', i, 'status', 'new', 'total', (i %% 997) || '.00'),
        'new', jsonb_build_object('id', i, 'status', s.status, 'total', (i %% 997) || '.00'),
        'changed', '["status"]'::jsonb),
    'processed', 1, c.created, NULL, NULL, c.created, c.created,
    CASE WHEN i %% 50 = 0 THEN 500 ELSE 200 END, '', NULL
FROM generate_series(1, %(rows)s) AS i
CROSS JOIN LATERAL (SELECT now() - random() * interval '720 hours' AS created) AS c
CROSS JOIN LATERAL (SELECT CASE
        WHEN i %% 100 < 40 THEN 'paid'
        WHEN i %% 100 < 70 THEN 'new'
        WHEN i %% 100 < 95 THEN 'shipped'
        WHEN i %% 100 < 99 THEN 'cancelled'
        ELSE 'refunded' END AS status) AS s
CROSS JOIN (SELECT id, name FROM event_triggers WHERE name = 'orders') AS t
"""

INVOCATIONS_SQL = """
INSERT INTO invocation_logs (event_id, attempt, invoked_at, duration_ms, request,
    response_status_code, response_headers, response_body, error_msg, succeeded)
SELECT e.id, 1, e.created_at, 20, '{"url": "https://example.com"}'::jsonb,
    e.last_status_code, '{}'::jsonb, '', '', e.last_status_code = 200
FROM event_logs AS e
"""


def setup_django() -> None:
    """Configure Django on a fresh benchmark database, in a throwaway var folder."""
    common.setup_django_on_fresh_database(BENCH_DB)


def load(rows: int) -> dict:
    """Create the tables without the payload index, fill them, then build the index the
    migration builds (as on an existing table); seconds of each step."""
    from django.core.management import call_command
    from django.db import connection

    from triggers.models import Trigger

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS event_logs_payload")
    Trigger.objects.create(name="orders", type="order_updated", url="https://example.com/")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(LOAD_SQL % {"rows": rows, "customers": CUSTOMERS})
        cursor.execute(INVOCATIONS_SQL)
    filled = time.perf_counter()
    create_index()
    indexed = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE event_logs")
        cursor.execute("VACUUM ANALYZE invocation_logs")
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('event_logs_payload'))")
        size = cursor.fetchone()[0]
    return {
        "fill_s": round(filled - started, 1),
        "index_build_s": round(indexed - filled, 1),
        "index_size": size,
    }


def create_index() -> None:
    """What eventing/migrations/0004_payload_search.py runs."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE INDEX IF NOT EXISTS event_logs_payload ON event_logs "
            "USING gin (payload jsonb_path_ops)"
        )


def insert_cost(rows: int = 20_000, rounds: int = 5, singles: int = 2000) -> dict:
    """What the payload index costs writers, into two copies of event_logs (all its indexes)
    with and without the GIN index, alternating: `rows` events in one statement, and `singles`
    one-event statements (as emit() writes); medians in milliseconds."""
    from django.db import connection

    times: dict[str, list[float]] = {"with_gin": [], "without_gin": []}
    single: dict[str, list[float]] = {"with_gin": [], "without_gin": []}
    with connection.cursor() as cursor:
        for name in times:
            cursor.execute(f"DROP TABLE IF EXISTS bench_{name}")
            cursor.execute(f"CREATE TABLE bench_{name} (LIKE event_logs INCLUDING ALL)")
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'bench_without_gin' "
            "AND indexdef LIKE '%%USING gin%%'"
        )
        for (index,) in cursor.fetchall():
            cursor.execute(f"DROP INDEX {index}")
        insert = LOAD_SQL.replace("INSERT INTO event_logs", "INSERT INTO bench_{table}")
        for _ in range(rounds):
            for name in times:
                started = time.perf_counter()
                cursor.execute(
                    insert.replace("{table}", name) % {"rows": rows, "customers": CUSTOMERS}
                )
                times[name].append(time.perf_counter() - started)
            for name in times:
                one = insert.replace("{table}", name) % {"rows": 1, "customers": CUSTOMERS}
                started = time.perf_counter()
                for _ in range(singles // rounds):
                    cursor.execute(one)
                single[name].append(time.perf_counter() - started)
        for name in times:
            cursor.execute(f"DROP TABLE bench_{name}")
    return {
        "rows_per_insert": rows,
        **{f"{name}_ms": round(statistics.median(t) * 1000, 1) for name, t in times.items()},
        "single_row_inserts": singles // rounds,
        **{
            f"single_{name}_ms": round(statistics.median(t) * 1000, 1) for name, t in single.items()
        },
    }


def time_query(client, url: str, repeat: int) -> dict:
    """Median and spread of `repeat` answers (after one warm-up), and the rows on the page."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200
    shown = len(response.json()["results"]) if url.startswith("/api/") else None
    return {
        "median_s": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "answers": repeat,
        "rows_on_page": shown,
    }


def main(argv: list[str] | None = None) -> int:
    """Load, time with and without the index, record; exit 1 if an indexed answer misses."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    setup_django()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    loading = load(args.rows)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM event_logs")
        loaded = cursor.fetchone()[0]
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    client = Client()
    client.force_login(User.objects.create_superuser("bench", "bench@example.com", "bench"))
    indexed = {name: time_query(client, url, args.repeat) for name, url in QUERIES.items()}
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX event_logs_payload")
    # Without the index every payload filter reads the table: fewer answers are enough.
    unindexed = {
        name: time_query(client, url, max(3, args.repeat // 2))
        for name, url in QUERIES.items()
        if "payload__" in url
    }
    create_index()
    writes = insert_cost()
    print(f"insert of {writes['rows_per_insert']} events: {writes}")
    for name, figures in indexed.items():
        without = unindexed.get(name)
        print(
            f"{name:30} indexed median {figures['median_s'] * 1000:8.1f} ms"
            + (f"   without index {without['median_s'] * 1000:8.1f} ms" if without else "")
        )
    result = {
        "benchmark": "payload search and invocation list on a large event_logs table",
        "rows": loaded,
        "postgresql": pg_version,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        **loading,
        "target_s": TARGET_S,
        "queries": QUERIES,
        "indexed": indexed,
        "without_payload_index": unindexed,
        "insert_cost": writes,
        "all_indexed_under_target": all(q["median_s"] < TARGET_S for q in indexed.values()),
        "note": "Medians of several answers through Django's test client (authentication, "
        "serialisation and the query), after one warm-up answer; the same run then drops the "
        "GIN index and times the payload queries again.",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"rows={loaded} {loading} -> {args.output}")
    return 0 if result["all_indexed_under_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
