"""Scale: with 1,000,000 rows in event_logs, one sweeper pass ≤ 50 ms and emit overhead
unchanged from the empty table (PostgreSQL)."""

from __future__ import annotations

import argparse
import time

from bench import common


def time_emits(count: int) -> float:
    """Microseconds per emit of a custom event with one trigger (publishing off)."""
    from eventing import emit

    started = time.perf_counter()
    for n in range(count):
        emit("bench_scale", {"n": n})
    return (time.perf_counter() - started) / count * 1e6


def time_sweeps(passes: int) -> list[float]:
    """Milliseconds per sweeper pass."""
    from eventing.maintenance.sweeper import sweep

    samples = []
    for _ in range(passes):
        started = time.perf_counter()
        sweep()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def fill(rows: int, trigger_id: int) -> None:
    """Add `rows` finished events (and a few hundred staged far in the future) with SQL."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO event_logs (id, batch_id, type, trigger_id, trigger_name, source,
                payload, status, attempts, deliver_at, created_at, processed_at, remark,
                last_status_code)
            SELECT md5(g::text || 'e')::uuid, md5(g::text || 'b')::uuid, 'bench_scale', %s,
                'bench_scale', '', '{"n": 1}'::jsonb,
                CASE WHEN g %% 50 = 0 THEN 'failed' ELSE 'processed' END, 1,
                now() - (g || ' seconds')::interval, now() - (g || ' seconds')::interval,
                now() - (g || ' seconds')::interval, '', 200
            FROM generate_series(1, %s) AS g
            """,
            [trigger_id, rows],
        )
        cursor.execute(
            """
            INSERT INTO event_logs (id, batch_id, type, trigger_id, trigger_name, source,
                payload, status, attempts, deliver_at, created_at, remark)
            SELECT md5(g::text || 's')::uuid, md5(g::text || 'b')::uuid, 'bench_scale', %s,
                'bench_scale', '', '{}'::jsonb, 'staged', 0, now() + interval '1 day',
                now(), ''
            FROM generate_series(1, 500) AS g
            """,
            [trigger_id],
        )
        cursor.execute("ANALYZE event_logs")


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--emits", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    common.setup_django()
    from django.conf import settings

    settings.EVENTING["PUBLISH_IN_BACKGROUND"] = False
    from unittest import mock

    from triggers.models import Trigger

    common.reset_events()
    trigger = Trigger.objects.create(
        name="bench_scale", type="bench_scale", url="http://127.0.0.1:9/"
    )
    with mock.patch("eventing.tasks.deliver.apply_async"):
        empty_emit = [time_emits(args.emits) for _ in range(args.rounds)]
        empty_sweep = time_sweeps(20)
        started = time.perf_counter()
        fill(args.rows, trigger.pk)
        fill_s = time.perf_counter() - started
        full_emit = [time_emits(args.emits) for _ in range(args.rounds)]
        full_sweep = time_sweeps(20)
    result = {
        "rows": args.rows,
        "fill_seconds": fill_s,
        "emit_us_empty": common.median(empty_emit),
        "emit_us_full": common.median(full_emit),
        "emit_ratio": common.median(full_emit) / common.median(empty_emit),
        "sweep_ms_empty": common.median(empty_sweep),
        "sweep_ms_full": common.median(full_sweep),
        "sweep_ms_full_p95": common.percentile(full_sweep, 95),
    }
    common.write_result("scale", result)
    common.reset_events()
    return result


if __name__ == "__main__":
    print(main())
