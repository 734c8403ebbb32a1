"""Owners' isolation: owner B's delivery latency while 1,000 of owner A's events queue behind an
endpoint answering in 5 s, side by side with B alone (target: B's p99 within 2× of idle).

Each run: B's events are emitted at a steady rate (`--rate`, with `sent_at` in their data) and
the receiver notes each arrival; latency = arrival − sent_at. "loaded" first queues A's 1,000
events to a receiver answering after 5 s; A's subscription holds SUBSCRIPTION_MAX_IN_FLIGHT
worker slots, the rest of A's rows wait as staged. Idle and loaded runs alternate, so drift in
the machine's load falls on both.

    python -m tests.stack postgres -- .venv/bin/python -m bench.bench_owners
"""

from __future__ import annotations

import argparse
import time

from bench import common


def setup_owners(slow_port: int, fast_port: int):
    """Owners A and B, one subscription each; returns (A, B, A's subscription)."""
    from django.contrib.auth import get_user_model

    from eventing.models import PublicEventType, Subscription
    from eventing.subscriptions import services

    Subscription.objects.all().delete()
    PublicEventType.objects.get_or_create(name="invoice_paid")
    users = get_user_model().objects
    a = users.get_or_create(username="bench_owner_a")[0]
    b = users.get_or_create(username="bench_owner_b")[0]
    slow, _ = services.create_subscription(
        a, url=f"http://127.0.0.1:{slow_port}/a", types=["invoice_paid"]
    )
    services.create_subscription(b, url=f"http://127.0.0.1:{fast_port}/b", types=["invoice_paid"])
    return a, b, slow


def b_latencies(port: int, b, events: int, rate: float) -> list[float]:
    """Emit B's events at `rate`/s; seconds from emit to arrival of each."""
    from eventing import emit

    before = common.receiver_count(port)
    started = time.time()
    for n in range(events):
        due = started + n / rate
        time.sleep(max(0.0, due - time.time()))
        emit("invoice_paid", {"n": n, "sent_at": time.time()}, owner=b)
    common.wait_count(port, before + events, timeout_s=600)
    records = common.receiver_records(port)[before:]
    return [arrived - sent for _, arrived, sent in records if sent is not None]


def run(kind: str, ports: tuple[int, int], args) -> dict:
    """One scenario on a fresh worker: B alone ("idle") or behind A's backlog ("loaded")."""
    from eventing import emit
    from eventing.dispatch.operations import cancel_events
    from eventing.models import EventLog
    from triggers.models import Trigger

    common.reset_events()
    a, b, slow = setup_owners(*ports)
    limits = {}
    if args.max_in_flight is not None:
        limits["max_in_flight"] = args.max_in_flight or None
    if args.rate_limit is not None:
        limits["rate_limit"] = args.rate_limit or None
    if limits:
        Trigger.objects.filter(subscription__isnull=False).update(**limits)
    worker = common.worker(pool="threads", concurrency=args.concurrency)
    try:
        if kind == "loaded":
            for n in range(args.a_events):
                emit("invoice_paid", {"n": n}, owner=a)
        latencies = b_latencies(ports[1], b, args.b_events, args.rate)
        a_done = EventLog.objects.filter(trigger_id=slow.trigger_id, status="processed").count()
        waiting = EventLog.objects.filter(trigger_id=slow.trigger_id, status="staged")
        cancel_events(list(waiting.values_list("id", flat=True)), reason="bench over")
    finally:
        worker.stop()
    result = {
        "kind": kind,
        "p50_ms": round(common.percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(common.percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "a_processed_meanwhile": a_done if kind == "loaded" else None,
    }
    print(result, flush=True)
    return result


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--a-events", type=int, default=1000)
    parser.add_argument("--b-events", type=int, default=60)
    # Within what one capped subscription sustains on a shared 2-core machine, so B's latency
    # is delivery time, not a backlog of its own.
    parser.add_argument("--rate", type=float, default=5.0, help="B's events per second")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slow-ms", type=float, default=5000)
    parser.add_argument("--kinds", nargs="+", default=["idle", "loaded"])
    parser.add_argument("--result-name", default="owners_isolation")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=None,
        help="Override SUBSCRIPTION_MAX_IN_FLIGHT for this run (0: no cap).",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        help="Override SUBSCRIPTION_RATE_LIMIT for this run (0: no limit).",
    )
    args = parser.parse_args()
    common.setup_django()
    slow_receiver, slow_port = common.start_receiver(delay_ms=args.slow_ms)
    fast_receiver, fast_port = common.start_receiver(delay_ms=0)
    runs = []
    try:
        for _ in range(args.repeats):
            for kind in args.kinds:
                runs.append(run(kind, (slow_port, fast_port), args))
    finally:
        slow_receiver.terminate()
        fast_receiver.terminate()

    def med(kind: str, key: str) -> float | None:
        values = [r[key] for r in runs if r["kind"] == kind]
        return common.median(values) if values else None

    result = {
        "subscription_limits": {"max_in_flight": args.max_in_flight, "rate_limit": args.rate_limit},
        "a_events": args.a_events,
        "a_endpoint_ms": args.slow_ms,
        "b_events": args.b_events,
        "b_rate_per_s": args.rate,
        "worker_concurrency": args.concurrency,
        "runs": runs,
        "idle_p99_ms_median": med("idle", "p99_ms"),
        "loaded_p99_ms_median": med("loaded", "p99_ms"),
        "idle_p50_ms_median": med("idle", "p50_ms"),
        "loaded_p50_ms_median": med("loaded", "p50_ms"),
    }
    if "idle" in args.kinds and "loaded" in args.kinds:
        ratio = result["loaded_p99_ms_median"] / result["idle_p99_ms_median"]
        result["p99_ratio"] = round(ratio, 2)
    common.write_result(args.result_name, result)
    return result


if __name__ == "__main__":
    print(main())
