"""Latency from commit to receipt at a steady rate (target at 200 events/s: p50 ≤ 15 ms,
p99 ≤ 100 ms)."""

from __future__ import annotations

import argparse
import time

from bench import common


def warm_up(port: int, count: int) -> None:
    """Steady state before measuring: the worker has served events and the planner has
    statistics of a filled table (autovacuum's job in production)."""
    from eventing import emit
    from eventing.dispatch.publish import flush

    before = common.receiver_count(port)
    for n in range(count):
        emit("bench_latency", {"n": -1 - n})
        time.sleep(0.002)
    flush()
    common.wait_count(port, before + count, timeout_s=120)
    common.analyze()


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    common.setup_django()
    from eventing import emit
    from eventing.dispatch.publish import flush
    from triggers.models import Trigger

    receiver, port = common.start_receiver()
    common.reset_events()
    Trigger.objects.create(
        name="bench_latency", type="bench_latency", url=f"http://127.0.0.1:{port}/"
    )
    workers = [
        common.worker(concurrency=args.concurrency, beat=(i == 0), name=f"l{i}")
        for i in range(args.processes)
    ]
    try:
        warm_up(port, count=int(args.rate * 5))
        total = int(args.rate * args.seconds)
        started = time.perf_counter()
        for n in range(total):
            # Paced against the clock, not by sleeping a fixed step, so the rate holds.
            wait = started + n / args.rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            emit("bench_latency", {"n": n, "sent_at": time.time()})
        flush()
        common.wait_count(port, total + int(args.rate * 5), timeout_s=120)
        records = common.receiver_records(port)
    finally:
        for worker in workers:
            worker.stop()
        receiver.terminate()
    latencies_ms = [(arrived - sent) * 1000 for _, arrived, sent in records if sent]
    result = {
        "rate_per_s": args.rate,
        "processes": args.processes,
        "concurrency": args.concurrency,
        "events": len(latencies_ms),
        "p50_ms": common.percentile(latencies_ms, 50),
        "p90_ms": common.percentile(latencies_ms, 90),
        "p99_ms": common.percentile(latencies_ms, 99),
        "max_ms": max(latencies_ms),
        "latencies_ms": sorted(latencies_ms),
    }
    common.write_result("latency", result)
    return result


if __name__ == "__main__":
    out = main()
    print({k: v for k, v in out.items() if k != "latencies_ms"})
