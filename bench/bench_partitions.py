"""Retention by dropping partitions against retention by DELETE, with a concurrent writer.

    python -m tests.stack postgres -- python -m bench.bench_partitions [--old-rows 600000]

For each way, on a fresh database: load `--old-rows` finished events created 31–45 days ago
(past the 30-day retention) plus recent ones, start a writer inserting events one per
transaction, measure its latency for a few seconds (baseline), then run `eventing_cleanup`'s
function while it writes. Records cleanup time and the writer's p50/p99 before and during, side
by side, in bench/results/partitions.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from bench import bench_admin, common

RESULTS = common.RESULTS / "partitions.json"
BASELINE_S = 5.0


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of `values` (milliseconds in, milliseconds out)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.5) - 1))]


class Writer(threading.Thread):
    """Inserts one event per transaction until stopped; keeps each insert's latency (ms)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.latencies: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from django.db import connection
        from django.utils import timezone

        from eventing.models import EventLog

        while not self.stop.is_set():
            now = timezone.now()
            started = time.perf_counter()
            EventLog.objects.create(
                batch_id=uuid.uuid4(),
                type="type_1",
                trigger_name="trigger_1",
                payload={"writer": True},
                status="staged",
                deliver_at=now,
            )
            self.latencies.append((time.monotonic(), (time.perf_counter() - started) * 1000))
        connection.close()

    def between(self, start: float, end: float) -> list[float]:
        """Latencies of inserts that started within [start, end) (monotonic seconds)."""
        return [ms for at, ms in self.latencies if start <= at < end]


def figures(latencies: list[float]) -> dict:
    """p50, p99, max and count of writer latencies (ms)."""
    if not latencies:
        return {"inserts": 0}
    return {
        "inserts": len(latencies),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
    }


def run(way: str, old_rows: int, recent_rows: int) -> dict:
    """One way on a fresh database: load, baseline, cleanup under a writer."""
    from django.conf import settings as django_settings
    from django.db import connection

    from eventing.ops import partitions
    from eventing.ops.retention import delete_expired

    django_settings.EVENTING = {
        **getattr(django_settings, "EVENTING", {}),
        "RETENTION": {"processed": 30, "failed": 30, "cancelled": 30},
    }
    if way == "drop":
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        start = partitions.start_of_day(_now()) - dt.timedelta(days=46)
        partitions.enable(start=start)
    load_s = bench_admin.load_events([(old_rows, 31 * 24, 14 * 24), (recent_rows, 0, 24)])
    with connection.cursor() as cursor:
        # Every old event finished: the whole of each old day is past retention.
        cursor.execute(
            "UPDATE event_logs SET status = 'processed' WHERE status = 'staged' "
            "AND created_at < now() - interval '30 days'"
        )
        cursor.execute("VACUUM ANALYZE event_logs")
        cursor.execute("SELECT count(*) FROM event_logs")
        loaded = cursor.fetchone()[0]
    writer = Writer()
    writer.start()
    began = time.monotonic()
    time.sleep(BASELINE_S)
    cleanup_start = time.monotonic()
    report = delete_expired()
    cleanup_end = time.monotonic()
    time.sleep(1.0)
    writer.stop.set()
    writer.join()
    connection.close()
    return {
        "events_loaded": loaded,
        "load_s": round(load_s, 1),
        "cleanup_s": round(cleanup_end - cleanup_start, 2),
        "cleanup_report": report,
        "writer_before": figures(writer.between(began, cleanup_start)),
        "writer_during_cleanup": figures(writer.between(cleanup_start, cleanup_end)),
    }


def _now():
    from django.utils import timezone

    return timezone.now()


def main(argv: list[str] | None = None) -> int:
    """Each way in its own process on its own database; both side by side in one file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-rows", type=int, default=600_000)
    parser.add_argument("--recent-rows", type=int, default=100_000)
    parser.add_argument("--way", choices=("delete", "drop", "both"), default="both")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.way != "both":
        common.setup_django_on_fresh_database(f"bench_partitions_{args.way}")
        result = run(args.way, args.old_rows, args.recent_rows)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        print(args.way, json.dumps(result))
        return 0
    ways = {}
    for way in ("delete", "drop"):
        part = args.output.with_suffix(f".{way}.json")
        sizes = ["--old-rows", str(args.old_rows), "--recent-rows", str(args.recent_rows)]
        command = [sys.executable, "-m", "bench.bench_partitions", "--way", way, *sizes]
        subprocess.run([*command, "--output", str(part)], check=True, cwd=common.ROOT)
        ways[way] = json.loads(part.read_text())
        part.unlink()
    result = {
        "benchmark": "retention: DELETE in batches vs dropping partitions, concurrent writer",
        "old_rows": args.old_rows,
        "recent_rows": args.recent_rows,
        "python": platform.python_version(),
        "ways": ways,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
