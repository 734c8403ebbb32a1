"""Database capture vs signal capture, side by side in one run (PostgreSQL + Redis).

Targets, database mode: save() with a trigger ≤ 1.3× a save without one in autocommit and
≤ 1.5× per row in 100-row transactions; a 10,000-row QuerySet.update() with a trigger ≤ 2×
without; commit → receipt latency p50 ≤ 10 ms, p99 ≤ 50 ms at 200 events/s; throughput to a
fast receiver no lower than signal mode. Signal mode is measured beside it in every round.

    python -m tests.stack postgres -- python -m bench.bench_capture [--quick]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from contextlib import nullcontext

from bench import common

SIGNALS, DATABASE = "signals", "database"


def set_mode(mode: str, *, enabled: bool = True) -> None:
    """Switch this process's capture mode and the trigger on, or everything off; sync."""
    from django.conf import settings
    from django.core.signals import setting_changed

    from eventing.capture import database as capture_db
    from eventing.conf import get_settings
    from eventing.store import trigger_cache
    from triggers.models import Trigger

    settings.EVENTING["CAPTURE"] = mode
    get_settings.cache_clear()
    # As override_settings would: the actor wrapper and the session's mode follow.
    setting_changed.send(sender=None, setting="EVENTING", value=settings.EVENTING, enter=True)
    Trigger.objects.filter(type__startswith="DB_").update(enabled=enabled)
    trigger_cache.invalidate()
    trigger_cache.current_index()
    capture_db.sync()


def add_trigger(kind: str, url: str = "http://127.0.0.1:9/") -> None:
    from triggers.models import Trigger

    Trigger.objects.create(name=f"bench_{kind.lower()}", type=kind, source="testapp.Order", url=url)


def time_creates(count: int, batch: int) -> float:
    """Seconds per row for `count` creates, `batch` rows per transaction (1 = autocommit)."""
    from django.db import transaction

    from tests.testapp.models import Order

    started = time.perf_counter()
    if batch == 1:
        for _ in range(count):
            Order.objects.create()
    else:
        for _ in range(count // batch):
            with transaction.atomic():
                for _ in range(batch):
                    Order.objects.create()
    return (time.perf_counter() - started) / count


def clear_rows() -> None:
    """Empty orders and events between samples (TRUNCATE: no delete triggers, no bloat)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE testapp_order, testapp_orderline, event_logs, event_captures, invocation_logs"
        )


def measure_writes(count: int, rounds: int) -> dict:
    """Per-row cost of save() without a trigger, with one in database mode, in signal mode."""
    import eventing

    common.reset_events()
    add_trigger("DB_INSERT")
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        # Side by side in each round, so machine noise hits every variant alike.
        for label, mode, enabled in (
            ("none", SIGNALS, False),
            ("database", DATABASE, True),
            ("database_actor", DATABASE, True),
            ("signals", SIGNALS, True),
        ):
            set_mode(mode, enabled=enabled)
            for batch, name in ((1, "autocommit"), (100, "tx100")):
                clear_rows()
                with eventing.actor("bench") if label.endswith("actor") else nullcontext():
                    samples.setdefault(f"{name}_{label}", []).append(time_creates(count, batch))
    med = {k: common.median(v) * 1e6 for k, v in samples.items()}

    def ratio(name: str, label: str) -> float:
        # Median of each round's own ratio: a load spike from another process slows one round
        # (all its variants alike, measured seconds apart), not the ratio.
        pairs = zip(samples[f"{name}_{label}"], samples[f"{name}_none"], strict=True)
        return common.median([variant / none for variant, none in pairs])

    return {
        "rows_per_sample": count,
        "rounds": rounds,
        "median_us_per_row": med,
        "ratio_autocommit_database": ratio("autocommit", "database"),
        "ratio_tx100_database": ratio("tx100", "database"),
        "ratio_autocommit_database_actor": ratio("autocommit", "database_actor"),
        "ratio_tx100_database_actor": ratio("tx100", "database_actor"),
        "ratio_autocommit_signals": ratio("autocommit", "signals"),
        "ratio_tx100_signals": ratio("tx100", "signals"),
    }


def measure_update(rows: int, rounds: int) -> dict:
    """A `rows`-row QuerySet.update() with a DB_UPDATE trigger (database mode) and without; and
    the expansion of its capture into `rows` event rows (after commit, off the writer's path)."""
    from django.db import connection

    from eventing.capture.database import expand_all
    from eventing.models import EventLog
    from tests.testapp.models import Order

    common.reset_events()
    add_trigger("DB_UPDATE")
    samples: dict[str, list[float]] = {"without": [], "with": [], "expansion": []}
    for n in range(rounds):
        for label, enabled in (("without", False), ("with", True)):
            set_mode(DATABASE, enabled=enabled)
            clear_rows()
            Order.objects.bulk_create(Order(status="new", quantity=i) for i in range(rows))
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE testapp_order")
            started = time.perf_counter()
            Order.objects.update(status=f"round {n}")
            samples[label].append(time.perf_counter() - started)
        started = time.perf_counter()
        expand_all()
        samples["expansion"].append(time.perf_counter() - started)
        assert EventLog.objects.count() == rows, "the update did not record every row"
    med = {k: common.median(v) * 1000 for k, v in samples.items()}
    ratios = [w / wo for w, wo in zip(samples["with"], samples["without"], strict=True)]
    return {"rows": rows, "rounds": rounds, "median_ms": med, "ratio": common.median(ratios)}


def measure_wrapper(count: int, rounds: int) -> dict:
    """What the actor's execute wrapper costs a statement: a 0-row UPDATE with and without it
    (database mode, no trigger on the table, an actor set), side by side each round."""
    from django.db import connection

    import eventing
    from eventing.capture.actor import pass_actor
    from tests.testapp.models import Untracked

    set_mode(DATABASE, enabled=False)
    samples: dict[str, list[float]] = {"with": [], "without": []}
    with eventing.actor("bench"):
        for _ in range(rounds):
            for label in ("without", "with"):
                if label == "with" and pass_actor not in connection.execute_wrappers:
                    connection.execute_wrappers.append(pass_actor)
                if label == "without" and pass_actor in connection.execute_wrappers:
                    connection.execute_wrappers.remove(pass_actor)
                started = time.perf_counter()
                for _ in range(count):
                    Untracked.objects.filter(pk=-1).update(value=1)
                samples[label].append((time.perf_counter() - started) / count)
    set_mode(DATABASE, enabled=True)  # puts the wrapper back
    ratios = [w / wo for w, wo in zip(samples["with"], samples["without"], strict=True)]
    med = {k: common.median(v) * 1e6 for k, v in samples.items()}
    return {"statements": count, "rounds": rounds, "median_us": med, "ratio": common.median(ratios)}


def settle(timeout_s: float = 120) -> None:
    """Wait until workers have finished every event (their invocation rows are written)."""
    from eventing.models import EventLog, EventStatus

    deadline = time.monotonic() + timeout_s
    pending = [EventStatus.STAGED, EventStatus.PROCESSING]
    while EventLog.objects.filter(status__in=pending).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("events still staged or processing")
        time.sleep(0.1)


def measure_latency(port: int, rate: float, seconds: float) -> dict:
    """Commit → receipt at a steady `rate` of single-row autocommit creates, per mode.

    Each mode runs twice for half the time, in the order database, signals, signals, database:
    whichever runs first after the workers start is slower (up to 2× at p50 here), so a single
    pass per mode measured the order, not the mode.
    """
    from eventing.dispatch.publish import flush
    from eventing.models import EventLog
    from tests.testapp.models import Order

    pooled: dict[str, list[float]] = {DATABASE: [], SIGNALS: []}
    for mode in (DATABASE, SIGNALS, SIGNALS, DATABASE):
        settle()
        common.reset_events()
        add_trigger("DB_INSERT", url=f"http://127.0.0.1:{port}/")
        set_mode(mode)
        before = common.receiver_count(port)
        warm = int(rate * 3)
        for _ in range(warm):
            Order.objects.create()
            time.sleep(1 / rate)
        common.wait_count(port, before + warm, timeout_s=120)
        common.analyze()
        committed: dict[int, float] = {}
        total = int(rate * seconds / 2)
        started = time.perf_counter()
        for n in range(total):
            wait = started + n / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            order = Order.objects.create()
            committed[order.pk] = time.time()  # autocommit: the row and its event are in
        flush()
        common.wait_count(port, before + warm + total, timeout_s=120)
        arrived = {event_id: at for event_id, at, _ in common.receiver_records(port)}
        pks = dict(
            EventLog.objects.filter(payload__pk__in=list(committed)).values_list("id", "payload")
        )
        pooled[mode] += [
            (arrived[str(event_id)] - committed[data["pk"]]) * 1000
            for event_id, data in pks.items()
            if str(event_id) in arrived
        ]
    result = {}
    for mode, latencies in pooled.items():
        latencies.sort()
        result[mode] = {
            "events": len(latencies),
            "p50_ms": common.percentile(latencies, 50),
            "p90_ms": common.percentile(latencies, 90),
            "p99_ms": common.percentile(latencies, 99),
            "max_ms": latencies[-1],
        }
        print(mode, result[mode], flush=True)
    return {"rate_per_s": rate, "seconds": seconds, **result}


def write_orders(total: int, batch: int, done: list[float]) -> None:
    """Create `total` orders, `batch` per transaction, as fast as possible."""
    from django.db import connections, transaction

    from tests.testapp.models import Order

    try:
        for _ in range(total // batch):
            with transaction.atomic():
                for _ in range(batch):
                    Order.objects.create()
        done.append(time.time())
    finally:
        connections.close_all()


def measure_throughput(port: int, total: int, rounds: int) -> dict:
    """Writes to receipts: `total` rows in 100-row transactions while workers deliver."""
    from eventing.dispatch.publish import flush

    samples: dict[str, list[float]] = {DATABASE: [], SIGNALS: []}
    for _ in range(rounds):
        for mode in (DATABASE, SIGNALS):
            settle()
            common.reset_events()
            clear_rows()
            add_trigger("DB_INSERT", url=f"http://127.0.0.1:{port}/")
            set_mode(mode)
            before = common.receiver_count(port)
            started = time.time()
            done: list[float] = []
            writer = threading.Thread(target=write_orders, args=(total, 100, done))
            writer.start()
            writer.join()
            flush()
            finished = common.wait_count(port, before + total, timeout_s=600)
            samples[mode].append(total / (finished - started))
            print(f"{mode}: {samples[mode][-1]:.0f} events/s", flush=True)
    med = {k: common.median(v) for k, v in samples.items()}
    return {
        "events": total,
        "rounds": rounds,
        "per_s": samples,
        "median_per_s": med,
        "ratio": med[DATABASE] / med[SIGNALS],
    }


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rows and rounds")
    parts = ["writes", "wrapper", "update", "latency", "throughput"]
    parser.add_argument("--only", nargs="*", default=parts)
    args = parser.parse_args()
    common.setup_django()
    rounds = 3 if args.quick else 5
    result: dict = {}
    if "writes" in args.only:
        # Many short rounds: the machine is shared, and the median of many ratios holds still.
        result["writes"] = measure_writes(200 if args.quick else 400, 3 * rounds)
        print("writes", result["writes"], flush=True)
    if "wrapper" in args.only:
        result["wrapper"] = measure_wrapper(2000, 3 * rounds)
        print("wrapper", result["wrapper"], flush=True)
    if "update" in args.only:
        result["update"] = measure_update(10_000, 2 * rounds)
        print("update", result["update"], flush=True)
    if {"latency", "throughput"} & set(args.only):
        # The update stage's events (to a closed port) must not reach the workers.
        common.reset_events()
        clear_rows()
        receiver, port = common.start_receiver()
        workers = [
            common.worker(concurrency=16, beat=(i == 0), name=f"c{i}", EVENTING_CAPTURE=DATABASE)
            for i in range(2)
        ]
        try:
            if "latency" in args.only:
                result["latency"] = measure_latency(port, 200, 5 if args.quick else 15)
            if "throughput" in args.only:
                result["throughput"] = measure_throughput(
                    port, 5000 if args.quick else 20_000, 1 if args.quick else 3
                )
        finally:
            for worker in workers:
                worker.stop()
            receiver.terminate()
    set_mode(SIGNALS)
    # A partial run (--only) keeps the other parts of the last full one.
    earlier = {k: v for k, v in (load_result() or {}).items() if k != "machine"}
    common.write_result("capture", {**earlier, **result})
    return result


def load_result() -> dict | None:
    path = common.RESULTS / "capture.json"
    return json.loads(path.read_text()) if path.exists() else None


if __name__ == "__main__":
    print(main())
