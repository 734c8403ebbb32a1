"""Scheduling precision: events due 1–120 s ahead arrive no earlier than due, p99 ≤ 1 s late.

Run with a short ETA horizon (30 s) so events due later go through the sweeper as they would
in production for anything beyond EVENTING["ETA_HORIZON_S"].
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random

from bench import common


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--max-ahead", type=float, default=120)
    args = parser.parse_args()
    os.environ["EVENTING_TEST_ETA_HORIZON_S"] = "30"
    common.setup_django()
    from django.utils import timezone

    from eventing import emit
    from eventing.dispatch.publish import flush
    from triggers.models import Trigger

    receiver, port = common.start_receiver()
    common.reset_events()
    Trigger.objects.create(
        name="bench_schedule", type="bench_schedule", url=f"http://127.0.0.1:{port}/"
    )
    worker = common.worker(concurrency=16, EVENTING_TEST_ETA_HORIZON_S="30")
    rng = random.Random(42)
    try:
        now = timezone.now()
        for n in range(args.events):
            due = now + dt.timedelta(seconds=rng.uniform(1, args.max_ahead))
            emit("bench_schedule", {"n": n, "sent_at": due.timestamp()}, deliver_at=due)
        flush()
        common.wait_count(port, args.events, timeout_s=args.max_ahead + 60)
        records = common.receiver_records(port)
    finally:
        worker.stop()
        receiver.terminate()
    lateness_ms = [(arrived - due) * 1000 for _, arrived, due in records if due]
    result = {
        "events": len(lateness_ms),
        "horizon_s": 30,
        "ahead_s": [1, args.max_ahead],
        "early": sum(1 for v in lateness_ms if v < 0),
        "p50_late_ms": common.percentile(lateness_ms, 50),
        "p99_late_ms": common.percentile(lateness_ms, 99),
        "max_late_ms": max(lateness_ms),
        "lateness_ms": sorted(lateness_ms),
    }
    common.write_result("schedule", result)
    return result


if __name__ == "__main__":
    out = main()
    print({k: v for k, v in out.items() if k != "lateness_ms"})
