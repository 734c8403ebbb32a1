"""Ordered delivery's cost, side by side in one run: unordered throughput of this tree's workers
against a baseline checkout's (the code before ordering), and ordered throughput over 100 keys.

    python -m tests.stack postgres -- python -m bench.bench_ordering --baseline /tmp/main

Targets: unordered ≈ baseline (ordering costs unordered triggers nothing); ordered over 100
keys ≥ 0.5 × unordered. Each repeat runs every scenario once, starting with another each
time (the machine's load drifts); medians are reported.
The baseline's workers run the baseline's code on this tree's schema (its added columns are
nullable or unused there); the events are recorded by this tree's code in every scenario.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench import common


def queue_events(url: str, total: int, keys: int) -> None:
    """Record `total` events for one trigger (ordered over `keys` keys when `keys` > 0)."""
    from django.db import transaction

    from eventing import emit
    from triggers.models import Trigger

    Trigger.objects.create(
        name="bench_order",
        type="bench_event",
        url=url,
        retries=3,
        ordering_key="key" if keys else "",
    )
    chunk = 1000
    for start in range(0, total, chunk):
        with transaction.atomic():
            for n in range(start, min(start + chunk, total)):
                emit("bench_event", {"n": n, "key": n % keys if keys else n})
    common.analyze()


def run(
    port: int, total: int, *, keys: int, concurrency: int, processes: int, tree: Path | None
) -> float:
    """Events per second delivered from a full queue by `processes` workers of `tree`."""
    import tests.processes

    common.reset_events()
    before = common.receiver_count(port)
    queue_events(f"http://127.0.0.1:{port}/", total, keys)
    root = tests.processes.ROOT
    if tree is not None:
        tests.processes.ROOT = tree  # the workers run the baseline's code
    started = time.time()
    try:
        workers = [
            common.worker(concurrency=concurrency, beat=(i == 0), name=f"o{i}")
            for i in range(processes)
        ]
    finally:
        tests.processes.ROOT = root
    try:
        finished = common.wait_count(port, before + total, timeout_s=600)
    finally:
        for w in workers:
            w.stop()
    return total / (finished - started)


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--baseline", type=Path, help="a checkout of the code before ordering")
    args = parser.parse_args()
    common.setup_django()
    receiver, port = common.start_receiver()
    scenarios = {"unordered": (0, None), f"ordered_{args.keys}_keys": (args.keys, None)}
    if args.baseline:
        scenarios = {"baseline_unordered": (0, args.baseline.resolve()), **scenarios}
    runs: list[dict] = []
    try:
        names = list(scenarios)
        for repeat in range(args.repeats):
            measured = {}
            turn = repeat % len(names)
            for name in names[turn:] + names[:turn]:
                keys, tree = scenarios[name]
                measured[name] = run(
                    port,
                    args.events,
                    keys=keys,
                    concurrency=args.concurrency,
                    processes=args.processes,
                    tree=tree,
                )
            runs.append(measured)
            print("  ".join(f"{k} {measured[k]:.0f}/s" for k in names), flush=True)
    finally:
        receiver.terminate()
    medians = {name: common.median([r[name] for r in runs]) for name in scenarios}
    ordered = medians[f"ordered_{args.keys}_keys"]
    result = {
        "events": args.events,
        "keys": args.keys,
        "concurrency": args.concurrency,
        "processes": args.processes,
        "runs": runs,
        "medians_per_s": medians,
        "ordered_vs_unordered": ordered / medians["unordered"],
        # Ratios within each repeat, whose scenarios ran minutes apart at most.
        "median_ratio_ordered_vs_unordered": common.median(
            [r[f"ordered_{args.keys}_keys"] / r["unordered"] for r in runs]
        ),
    }
    if args.baseline:
        result["unordered_vs_baseline"] = medians["unordered"] / medians["baseline_unordered"]
        result["median_ratio_unordered_vs_baseline"] = common.median(
            [r["unordered"] / r["baseline_unordered"] for r in runs]
        )
    common.write_result("ordering", result)
    return result


if __name__ == "__main__":
    print(main())
