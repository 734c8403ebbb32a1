"""Throughput to a fast receiver, and beside it a bare requests.Session().post loop.

Targets: ≥ 1,000 events/s sustained over 20,000 events, and ≥ 0.5 × the bare loop run with
the same process count against the same receiver in the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

from bench import common


def bare_loop(url: str, count: int) -> None:
    """What a hand-written sender does: one session, POST after POST."""
    import requests

    session = requests.Session()
    body = b'{"specversion":"1.0","data":{}}'
    for _ in range(count):
        session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=5)


def run_bare(url: str, total: int, processes: int) -> float:
    """Events per second of `processes` bare loops sharing `total` requests."""
    started = time.perf_counter()
    procs = [
        multiprocessing.Process(target=bare_loop, args=(url, total // processes))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return total / (time.perf_counter() - started)


def queue_events(url: str, total: int) -> None:
    """Record `total` events for one trigger and publish their messages (workers stopped)."""
    from django.db import transaction

    from eventing import emit
    from triggers.models import Trigger

    Trigger.objects.create(name="bench_fast", type="bench_event", url=url, retries=3)
    chunk = 1000
    for start in range(0, total, chunk):
        with transaction.atomic():
            for n in range(start, min(start + chunk, total)):
                emit("bench_event", {"n": n})
    common.analyze()


def run_eventing(port: int, total: int, pool: str, concurrency: int, processes: int) -> float:
    """Events per second delivered by `processes` worker processes from a full queue."""
    common.reset_events()
    before = common.receiver_count(port)
    queue_events(f"http://127.0.0.1:{port}/", total)
    started = time.time()
    workers = [
        common.worker(pool=pool, concurrency=concurrency, beat=(i == 0), name=f"t{i}")
        for i in range(processes)
    ]
    try:
        finished = common.wait_count(port, before + total, timeout_s=600)
    finally:
        for w in workers:
            w.stop()
    return total / (finished - started)


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pool", default="threads")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    common.setup_django()
    receiver, port = common.start_receiver()
    url = f"http://127.0.0.1:{port}/"
    runs = []
    try:
        for _ in range(args.repeats):
            bare = run_bare(url, args.events, args.processes)
            ours = run_eventing(port, args.events, args.pool, args.concurrency, args.processes)
            runs.append({"bare_per_s": bare, "eventing_per_s": ours, "ratio": ours / bare})
            print(f"bare {bare:.0f}/s  eventing {ours:.0f}/s  ratio {ours / bare:.2f}", flush=True)
    finally:
        receiver.terminate()
    result = {
        "events": args.events,
        "pool": args.pool,
        "concurrency": args.concurrency,
        "processes": args.processes,
        "runs": runs,
        "median_eventing_per_s": common.median([r["eventing_per_s"] for r in runs]),
        "median_bare_per_s": common.median([r["bare_per_s"] for r in runs]),
        "median_ratio": common.median([r["ratio"] for r in runs]),
    }
    common.write_result("throughput", result)
    return result


if __name__ == "__main__":
    print(main())
