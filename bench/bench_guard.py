"""What the missed-writes guard (EVENTING["MISSED_WRITES"], signal mode) costs a plain save():
save() with and without its execute wrapper, side by side in each round, on a model without
triggers (the wrapper's string test) and on one with a DB_INSERT trigger (the wrapper also
reads the call stack to see that save() made the INSERT). Target: within noise (ratio ≤ 1.05).

    python -m tests.stack postgres -- python -m bench.bench_guard [--quick]
"""

from __future__ import annotations

import argparse
import time

from bench import common


def time_saves(model, count: int) -> float:
    """Seconds per autocommit create of `model`."""
    started = time.perf_counter()
    for _ in range(count):
        model.objects.create()
    return (time.perf_counter() - started) / count


def measure(count: int, rounds: int) -> dict:
    """Median µs per save and the median per-round ratio with / without the guard."""
    from django.conf import settings
    from django.core.signals import setting_changed
    from django.db import connection

    from eventing.capture.missed_writes import watch_writes
    from eventing.conf import get_settings
    from eventing.store import trigger_cache
    from tests.testapp.models import Order, Untracked
    from triggers.models import Trigger

    settings.EVENTING["MISSED_WRITES"] = "warn"
    get_settings.cache_clear()
    setting_changed.send(sender=None, setting="EVENTING", value=settings.EVENTING, enter=True)
    common.reset_events()
    Trigger.objects.create(
        name="bench_guard", type="DB_INSERT", source="testapp.Order", url="http://127.0.0.1:9/"
    )
    trigger_cache.invalidate()
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        for label, model in (("untriggered", Untracked), ("triggered", Order)):
            for guard in ("without", "with"):
                if guard == "with" and watch_writes not in connection.execute_wrappers:
                    connection.execute_wrappers.insert(0, watch_writes)
                if guard == "without" and watch_writes in connection.execute_wrappers:
                    connection.execute_wrappers.remove(watch_writes)
                samples.setdefault(f"{label}_{guard}", []).append(time_saves(model, count))
    common.reset_events()

    def ratio(label: str) -> float:
        pairs = zip(samples[f"{label}_with"], samples[f"{label}_without"], strict=True)
        return common.median([w / wo for w, wo in pairs])

    return {
        "saves_per_sample": count,
        "rounds": rounds,
        "median_us_per_save": {k: common.median(v) * 1e6 for k, v in samples.items()},
        "ratio_untriggered": ratio("untriggered"),
        "ratio_triggered": ratio("triggered"),
    }


def measure_wrapper_alone(calls: int = 100_000) -> dict:
    """The wrapper's own time per statement, around a no-op execute: a SELECT, and an INSERT
    into a table without triggers (what most statements of a process meet)."""
    from eventing.capture.missed_writes import watch_writes

    def noop(sql, params, many, context):
        return None

    result = {}
    for label, sql in (
        ("select", 'SELECT "testapp_untracked"."id" FROM "testapp_untracked" LIMIT 1'),
        ("insert_untriggered", 'INSERT INTO "testapp_untracked" ("value") VALUES (%s)'),
    ):
        started = time.perf_counter()
        for _ in range(calls):
            watch_writes(noop, sql, (1,), False, {})
        result[label] = (time.perf_counter() - started) / calls * 1e6
    return {"wrapper_alone_us": result}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    common.setup_django()
    result = measure(200, 5) if args.quick else measure(500, 9)
    result.update(measure_wrapper_alone())
    common.write_result("guard", result)
    return result


if __name__ == "__main__":
    print(main())
