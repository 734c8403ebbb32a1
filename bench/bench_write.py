"""Write overhead: save() of a model with an enabled trigger vs the same model with none.

Targets: single-row autocommit ≤ 1.5×; 100 rows in one transaction ≤ 2.0×; a model with no
trigger at all ≤ 1.05× (Eventing's receivers connected vs not connected).
"""

from __future__ import annotations

import argparse
import time

from bench import common


def time_inserts(model, count: int, batch: int) -> float:
    """Seconds per row for `count` creates, `batch` rows per transaction (1 = autocommit)."""
    from django.db import transaction

    started = time.perf_counter()
    if batch == 1:
        for _ in range(count):
            model.objects.create()
    else:
        for _ in range(count // batch):
            with transaction.atomic():
                for _ in range(batch):
                    model.objects.create()
    return (time.perf_counter() - started) / count


def set_trigger(enabled: bool) -> None:
    from eventing.store.trigger_cache import current_index, invalidate
    from triggers.models import Trigger

    Trigger.objects.filter(name="bench_orders").update(enabled=enabled)
    invalidate()
    current_index()


def receivers_connected(connected: bool) -> None:
    """Connect or disconnect Eventing's model receivers (the no-trigger baseline)."""
    from django.db.models.signals import post_save, pre_save

    from eventing.capture import signals as receivers

    if connected:
        receivers.signals_connect()
    else:
        pre_save.disconnect(dispatch_uid="eventing.capture_old_row")
        post_save.disconnect(dispatch_uid="eventing.on_post_save")


def measure(count: int, rounds: int) -> dict:
    from tests.testapp.models import Order, Untracked
    from triggers.models import Trigger

    common.reset_events()
    Trigger.objects.create(
        name="bench_orders", type="DB_INSERT", source="testapp.Order", url="http://127.0.0.1:9/"
    )
    samples: dict[str, list[float]] = {
        k: []
        for k in (
            "autocommit_none",
            "autocommit_trigger",
            "tx100_none",
            "tx100_trigger",
            "untracked_disconnected",
            "untracked_connected",
        )
    }
    for _ in range(rounds):
        # Side by side in each round, so machine noise hits both sides alike.
        set_trigger(False)
        samples["autocommit_none"].append(time_inserts(Order, count, 1))
        set_trigger(True)
        samples["autocommit_trigger"].append(time_inserts(Order, count, 1))
        set_trigger(False)
        samples["tx100_none"].append(time_inserts(Order, count, 100))
        set_trigger(True)
        samples["tx100_trigger"].append(time_inserts(Order, count, 100))
        # Both orders in every round (ABBA): whichever side runs second gains a warmer cache,
        # which at this size is as large as the difference being measured.
        for connected in (False, True, True, False):
            receivers_connected(connected)
            key = "untracked_connected" if connected else "untracked_disconnected"
            samples[key].append(time_inserts(Untracked, count, 1))
        receivers_connected(True)
        common.reset_events()
        Trigger.objects.create(
            name="bench_orders", type="DB_INSERT", source="testapp.Order", url="http://127.0.0.1:9/"
        )
    med = {k: common.median(v) * 1e6 for k, v in samples.items()}
    return {
        "rows_per_sample": count,
        "rounds": rounds,
        "median_us_per_row": med,
        "ratio_autocommit": med["autocommit_trigger"] / med["autocommit_none"],
        "ratio_tx100": med["tx100_trigger"] / med["tx100_none"],
        "ratio_untracked": med["untracked_connected"] / med["untracked_disconnected"],
    }


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    common.setup_django()
    result = measure(args.rows, args.rounds)
    common.write_result("write_overhead", result)
    return result


if __name__ == "__main__":
    print(main())
