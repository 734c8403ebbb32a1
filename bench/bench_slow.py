"""Slow receivers: 2,000 events to a receiver taking 200 ms per request (target ≤ 10 s, i.e.
≥ 40 deliveries in flight from one worker host).

Run with the worker `make run` and docker/compose.yaml start: threads pool, 32 task threads;
batches are sent by the process's SENDER_THREADS (64)."""

from __future__ import annotations

import argparse
import time

from bench import common


def run(port: int, events: int, pool: str, concurrency: int) -> float:
    from bench.bench_throughput import queue_events

    common.reset_events()
    before = common.receiver_count(port)
    queue_events(f"http://127.0.0.1:{port}/", events)
    started = time.time()
    worker = common.worker(pool=pool, concurrency=concurrency)
    try:
        finished = common.wait_count(port, before + events, timeout_s=300)
    finally:
        worker.stop()
    return finished - started


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    common.setup_django()
    receiver, port = common.start_receiver(delay_ms=200)
    runs = []
    try:
        for concurrency in [c for c in args.concurrency for _ in range(args.repeats)]:
            seconds = run(port, args.events, "threads", concurrency)
            runs.append(
                {
                    "pool": "threads",
                    "concurrency": concurrency,
                    "seconds": seconds,
                    "in_flight_avg": args.events * 0.2 / seconds,
                }
            )
            print(runs[-1], flush=True)
    finally:
        receiver.terminate()
    result = {
        "events": args.events,
        "receiver_delay_ms": 200,
        "runs": runs,
        "median_seconds": common.median([r["seconds"] for r in runs]),
    }
    common.write_result("slow_receivers", result)
    return result


if __name__ == "__main__":
    print(main())
