"""Every Mission Control page at volume: 1M events in the last 24 h on a table of 10M.

    python -m tests.stack postgres -- python -m bench.bench_mission_control \
        [--recent-rows 1000000] [--old-rows 9000000] [--keep]

Loads the rows with generate_series INSERTs (recent: created over the last 24 h, with one
invocation each once finished; old: over the 30 days before), analyses, then renders each page
through Django's test client and records medians in bench/results/mission_control.json. Target:
every page ≤ 300 ms. `--keep` reuses the database a previous run loaded.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from bench import bench_admin, common

RESULTS = common.RESULTS / "mission_control.json"
BENCH_DB = "bench_mission_control"
TARGET_S = 0.3

PAGES = {
    "dashboard": "/mission-control/",
    "trigger_changelist": "/mission-control/triggers/trigger/",
    "event_changelist": "/mission-control/eventing/eventlog/",
    "event_changelist_failed": "/mission-control/eventing/eventlog/?status__exact=failed",
    "event_changelist_trigger_24h": "/mission-control/eventing/eventlog/?trigger=3&created=24h",
    "event_changelist_type_24h": "/mission-control/eventing/eventlog/?type=type_5&created=24h",
    "event_changelist_older_30d": "/mission-control/eventing/eventlog/?created=older30d",
    "event_changelist_search_key": "/mission-control/eventing/eventlog/?q=key-123450",
    "event_changelist_payload": "/mission-control/eventing/eventlog/?payload__n=4567891",
    "invocation_changelist": "/mission-control/eventing/invocationlog/",
    "invocation_changelist_500": "/mission-control/eventing/invocationlog/?status_code=500",
    "invocation_changelist_trigger": "/mission-control/eventing/invocationlog/?trigger=3",
    "invocation_changelist_failed": "/mission-control/eventing/invocationlog/?succeeded__exact=0",
    "eventtype_changelist": "/mission-control/triggers/eventtype/",
    "eventtype_add": "/mission-control/triggers/eventtype/add/",
    "queue_event": "/mission-control/queue-event/",
    "health": "/mission-control/health/",
}
# On the dashboard while its charts still have buckets to count after a cache clear.
PENDING = b'id="mc-chart-pending"'
# Deep pages: the key of the row 450,000 rows down (page 9000 at 50 a page), as the list's
# "older" link carries it after 9000 clicks.
DEEP_ROWS = 450_000


def loaded_rows() -> int:
    """Events in the benchmark database (0 when not loaded)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('event_logs') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute("SELECT count(*) FROM event_logs")
        return cursor.fetchone()[0]


def deep_cursor_pages() -> dict[str, str]:
    """URLs of the event and invocation lists DEEP_ROWS rows down, by key."""
    from django.db import connection

    from mission_control.keyset import encode_cursor

    urls = {}
    for name, table, column, path in (
        ("event_changelist_page_9000", "event_logs", "created_at", "eventing/eventlog"),
        (
            "invocation_changelist_page_9000",
            "invocation_logs",
            "invoked_at",
            "eventing/invocationlog",
        ),
    ):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")
            deep = min(DEEP_ROWS, cursor.fetchone()[0] // 2)  # small trial runs: half way
            cursor.execute(
                f"SELECT {column}, id FROM {table} ORDER BY {column} DESC, id DESC "
                f"OFFSET {deep} LIMIT 1"
            )
            value, pk = cursor.fetchone()
        urls[name] = f"/mission-control/{path}/?cursor={encode_cursor(value, pk)}"
    return urls


def row_pages() -> dict[str, str]:
    """URLs of one event's page, a search by its id, one trigger's and one event type's page."""
    from django.db import connection

    from triggers.models import EventType, Trigger

    with connection.cursor() as cursor:
        # A failed event of the day: its page lists an invocation.
        cursor.execute(
            "SELECT id FROM event_logs WHERE status = 'failed' "
            "AND created_at >= now() - interval '24 hours' ORDER BY created_at DESC LIMIT 1"
        )
        event_id = cursor.fetchone()[0]
    event_type, _ = EventType.objects.get_or_create(
        name="type_5", defaults={"description": "benchmark type", "queue_rule": "allow"}
    )
    trigger = Trigger.objects.get(name="trigger_3")
    return {
        "event_detail": f"/mission-control/eventing/eventlog/{event_id}/change/",
        "event_changelist_search_id": f"/mission-control/eventing/eventlog/?q={event_id}",
        "trigger_change": f"/mission-control/triggers/trigger/{trigger.pk}/change/",
        "eventtype_change": f"/mission-control/triggers/eventtype/{event_type.pk}/change/",
    }


def time_page(client, url: str, repeat: int, cold: int) -> dict:
    """Medians of `cold` renders each right after a cache clear and of `repeat` warm ones: wall
    time, this process's CPU time and the time spent waiting on SQL (on a shared machine the
    wall time also holds the time other processes had the CPU)."""
    from django.core.cache import cache
    from django.db import connection

    def render() -> tuple[float, float, float]:
        sql = [0.0]

        def timed(execute, statement, params, many, context):
            started = time.perf_counter()
            try:
                return execute(statement, params, many, context)
            finally:
                sql[0] += time.perf_counter() - started

        cpu, started = time.process_time(), time.perf_counter()
        with connection.execute_wrapper(timed):
            response = client.get(url)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, (url, response.status_code)
        return elapsed, time.process_time() - cpu, sql[0]

    cold_runs = []
    for _ in range(cold):
        cache.clear()
        cold_runs.append(render())
    # Warm means the dashboard's charts are complete: after a cache clear each render counts
    # a bounded share of the day's buckets (mission_control.dashboard.CHART_COUNT_BUDGET).
    cache.clear()
    to_fill = 0
    while PENDING in client.get(url).content and to_fill < 50:
        to_fill += 1
    warm = [render() for _ in range(repeat)]

    def median(runs: list[tuple[float, float, float]], part: int) -> float:
        return round(statistics.median(run[part] for run in runs), 4)

    return {
        "median_s": median(warm, 0),
        "cpu_median_s": median(warm, 1),
        "sql_median_s": median(warm, 2),
        "cold_median_s": median(cold_runs, 0),
        "cold_cpu_median_s": median(cold_runs, 1),
        "cold_sql_median_s": median(cold_runs, 2),
        "cold_s": [round(run[0], 4) for run in cold_runs],
        "min_s": round(min(run[0] for run in warm), 4),
        "max_s": round(max(run[0] for run in warm), 4),
        "renders": repeat,
        "renders_to_fill_charts": to_fill + 1,
    }


def explain_dashboard(client) -> list[dict]:
    """Each query a render after a cache clear makes, with EXPLAIN ANALYZE's plan and time."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/mission-control/").status_code == 200
    plans = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT") or "django_session" in sql:
                continue
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) {sql}")
            plan = [row[0] for row in cursor.fetchall()]
            plans.append({"sql": sql, "render_s": float(query["time"]), "plan": plan})
    return plans


def server_settings() -> dict[str, str]:
    """The PostgreSQL settings the figures depend on."""
    from django.db import connection

    names = [
        "shared_buffers",
        "effective_cache_size",
        "work_mem",
        "maintenance_work_mem",
        "random_page_cost",
        "max_parallel_workers_per_gather",
        "jit",
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)", [names]
        )
        return dict(cursor.fetchall())


def main(argv: list[str] | None = None) -> int:
    """Load (unless kept), render, record; exit 1 if a page misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recent-rows", type=int, default=1_000_000)
    parser.add_argument("--old-rows", type=int, default=9_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--cold", type=int, default=3, help="renders after a cache clear")
    parser.add_argument("--explain", type=Path, help="write the cold dashboard's plans here")
    parser.add_argument(
        "--invocation-hours",
        type=float,
        default=24,
        help="one invocation for each finished event of this many past hours (720: all)",
    )
    parser.add_argument("--keep", action="store_true", help="reuse a loaded database")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    common.setup_django_on_fresh_database(BENCH_DB, keep=args.keep)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    load_s = None
    if not loaded_rows():
        batches = [(args.recent_rows, 0, 24), (args.old_rows, 24, 696)]
        load_s = bench_admin.load_events(
            [b for b in batches if b[0]], index_after=True, invocation_hours=args.invocation_hours
        )
        load_s = round(load_s, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE created_at >= now() - interval '24 hours'), "
            "count(*) FROM event_logs"
        )
        recent, total = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM invocation_logs")
        invocations = cursor.fetchone()[0]
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    client = Client()
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "bench@example.com", "bench"
    )
    client.force_login(user)
    pages = {**PAGES, **deep_cursor_pages(), **row_pages()}
    timings = {}
    for name, url in pages.items():
        timings[name] = figures = time_page(client, url, args.repeat, args.cold)
        print(
            f"{name:34} warm {figures['median_s'] * 1000:7.1f} ms "
            f"(cpu {figures['cpu_median_s'] * 1000:6.1f}, "
            f"sql {figures['sql_median_s'] * 1000:6.1f})"
            f"  cold {figures['cold_median_s'] * 1000:7.1f} ms "
            f"(cpu {figures['cold_cpu_median_s'] * 1000:6.1f}, "
            f"sql {figures['cold_sql_median_s'] * 1000:6.1f})",
            flush=True,
        )
    if args.explain:
        args.explain.write_text(json.dumps(explain_dashboard(client), indent=2) + "\n")
    result = {
        "benchmark": "every Mission Control page at 1M events in the last 24 h",
        "events": total,
        "events_last_24h": recent,
        "invocations": invocations,
        "load_s": load_s,
        "postgresql": pg_version,
        "python": platform.python_version(),
        "target_s": TARGET_S,
        "pages": timings,
        "urls": pages,
        "settings": server_settings(),
        "machine": common.machine(),
        "all_under_target": all(p["median_s"] <= TARGET_S for p in timings.values()),
        "all_cold_under_target": all(p["cold_median_s"] <= TARGET_S for p in timings.values()),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"events={total} last 24 h={recent} invocations={invocations} -> {args.output}")
    return 0 if result["all_under_target"] and result["all_cold_under_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
