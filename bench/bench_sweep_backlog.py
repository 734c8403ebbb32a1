"""A sweeper pass with events scheduled ahead: it must cost what is due, not the backlog.

Medians of sweeper passes on an empty event table, then with `--rows` staged events scheduled
1 day to 1 year ahead (never sent, as the sweeper finds rows beyond the lookahead), plus a few
due ones each pass so the pass has work. Runs against the code on the path: give `--label`
and run it from an older checkout for the side by side (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import time

from bench import common


def sweeper_module():
    """The sweeper of whichever layout the code on the path has."""
    try:
        from eventing.maintenance import sweeper
    except ImportError:  # before eventing/maintenance/
        from eventing.maintenance import sweeper
    return sweeper


def sweep_function():
    """The sweep of whichever layout the code on the path has."""
    return sweeper_module().sweep


def due_rows(trigger_id: int, count: int, tag: str) -> None:
    """`count` staged rows due now and never sent: work for the next pass."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO event_logs (id, batch_id, type, trigger_id, trigger_name, source,
                payload, status, attempts, deliver_at, created_at, remark)
            SELECT md5(g::text || %s)::uuid, md5(g::text || 'b')::uuid, 'bench_backlog', %s,
                'bench_backlog', '', '{}'::jsonb, 'staged', 0, now(), now(), ''
            FROM generate_series(1, %s) AS g
            """,
            [tag, trigger_id, count],
        )


def time_sweeps(trigger_id: int, passes: int, due: int) -> list[float]:
    """Milliseconds per sweeper pass, `due` rows to send in each."""
    sweep = sweep_function()
    samples = []
    for n in range(passes):
        due_rows(trigger_id, due, f"due-{time.monotonic()}-{n}")
        started = time.perf_counter()
        sweep()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def schedule_ahead(trigger_id: int, rows: int, analyze: bool) -> None:
    """`rows` staged events due between 1 day and 1 year ahead, never sent; then ANALYZE, or
    not (statistics taken before the backlog grew, as until autovacuum's next pass)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO event_logs (id, batch_id, type, trigger_id, trigger_name, source,
                payload, status, attempts, deliver_at, created_at, remark)
            SELECT md5(g::text || 'ahead')::uuid, md5(g::text || 'b')::uuid, 'bench_backlog',
                %s, 'bench_backlog', '', '{"n": 1}'::jsonb, 'staged', 0,
                now() + interval '1 day' + (g %% 31536000 || ' seconds')::interval, now(), ''
            FROM generate_series(1, %s) AS g
            """,
            [trigger_id, rows],
        )
        if analyze:
            cursor.execute("ANALYZE event_logs")


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--due", type=int, default=20, help="rows due in each pass")
    parser.add_argument("--label", default="after")
    parser.add_argument("--no-analyze", action="store_true", help="keep the empty table's stats")
    args = parser.parse_args()
    common.setup_django_on_fresh_database("bench_sweep_backlog")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE event_logs")
    from unittest import mock

    from triggers.models import Trigger

    trigger = Trigger.objects.create(
        name="bench_backlog", type="bench_backlog", url="http://127.0.0.1:9/"
    )
    with (
        mock.patch("eventing.tasks.deliver.apply_async"),
        mock.patch("eventing.tasks.deliver_batch.apply_async"),
    ):
        empty = time_sweeps(trigger.pk, args.passes, args.due)
        started = time.perf_counter()
        schedule_ahead(trigger.pk, args.rows, analyze=not args.no_analyze)
        fill_s = time.perf_counter() - started
        full = time_sweeps(trigger.pk, args.passes, args.due)
        from django.utils import timezone

        plan = sweeper_module().to_send(timezone.now()).order_by("deliver_at")[:1000].explain()
    result = {
        "label": args.label,
        "rows_scheduled_ahead": args.rows,
        "due_per_pass": args.due,
        "fill_seconds": round(fill_s, 1),
        "sweep_ms_empty": round(common.median(empty), 2),
        "sweep_ms_backlog": round(common.median(full), 2),
        "sweep_ms_backlog_p95": round(common.percentile(full, 95), 2),
        "ratio": round(common.median(full) / common.median(empty), 2),
        "analyzed": not args.no_analyze,
        "plan": plan.splitlines(),
    }
    suffix = "-stale-stats" if args.no_analyze else ""
    common.write_result(f"sweep_backlog-{args.label}{suffix}", result)
    return result


if __name__ == "__main__":
    print(main())
