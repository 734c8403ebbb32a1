"""Overhead of EventingStorage: saving small files through the wrapper vs the bare storage.

    python bench/bench_storage.py [--files 1000] [--rounds 5]

Runs on the standalone project's embedded stack in a temporary folder (SQLite file, filesystem
broker; or DATABASE_URL / CELERY_BROKER_URL if set), migrates it, and times three ways of
saving `--files` files of 100 bytes, per storage (FileSystemStorage and InMemoryStorage):

- bare:        the storage itself;
- no_trigger:  through EventingStorage with no trigger on its alias (a dict lookup per save);
- one_trigger: through EventingStorage with one FILE_CREATE trigger: an intent row, the
               operation, the row staged, a message published to the broker.

After an untimed warm-up, each round runs every variant once, in a rotating order; the ratio
reported is the median over rounds of variant time / bare time within the same round (robust
to a shared machine's load drifting between rounds). Results go to bench/results/storage.json
and a short table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "storage.json"
ALIAS = "bench_files"


def setup_django(var_dir: Path) -> None:
    """Point the standalone settings at a throwaway folder and migrate."""
    sys.path.insert(0, str(ROOT))
    os.environ["EVENTING_VAR_DIR"] = str(var_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def storages_under_test(folder: Path) -> dict[str, tuple]:
    """(bare, wrapped) per storage kind; the wrapper gets its own instance of the same class."""
    from django.core.files.storage import FileSystemStorage, InMemoryStorage

    from eventing.capture.storage import EventingStorage

    def wrapped(backend: str, options: dict) -> EventingStorage:
        return EventingStorage(backend=backend, options=options, alias=ALIAS)

    return {
        "FileSystemStorage": (
            FileSystemStorage(location=str(folder / "bare")),
            wrapped(
                "django.core.files.storage.FileSystemStorage", {"location": str(folder / "wrapped")}
            ),
        ),
        "InMemoryStorage": (
            InMemoryStorage(),
            wrapped("django.core.files.storage.InMemoryStorage", {}),
        ),
    }


def save_files(storage, run: str, files: int) -> float:
    """Seconds to save `files` small files under a folder of their own."""
    from django.core.files.base import ContentFile

    payload = b"x" * 100
    started = time.perf_counter()
    for index in range(files):
        storage.save(f"{run}/f{index}.txt", ContentFile(payload))
    return time.perf_counter() - started


def set_trigger(enabled: bool) -> None:
    """One FILE_CREATE trigger on the bench alias, on or off (the index reloads at once)."""
    from triggers.models import Trigger

    Trigger.objects.update_or_create(
        name="bench_file_create",
        defaults={
            "type": "FILE_CREATE",
            "source": ALIAS,
            "url": "http://127.0.0.1:9/bench",
            "enabled": enabled,
        },
    )


VARIANTS = ("bare", "no_trigger", "one_trigger")
WARMUP_FILES = 100


def run(files: int, rounds: int, folder: Path) -> dict:
    """Time every variant `rounds` times; return medians and the median per-round ratios."""
    from django.conf import settings
    from django.db import connection

    from eventing.models import EventLog

    pairs = storages_under_test(folder)

    def save_with(variant: str, bare, wrapped, run_name: str, count: int) -> float:
        set_trigger(variant == "one_trigger")
        return save_files(bare if variant == "bare" else wrapped, run_name, count)

    timings: dict[str, dict[str, list[float]]] = {}
    for kind, (bare, wrapped) in pairs.items():
        for variant in VARIANTS:  # warm up imports, connections, the broker; not timed
            save_with(variant, bare, wrapped, f"warmup-{variant}", WARMUP_FILES)
        per_kind = timings.setdefault(kind, {variant: [] for variant in VARIANTS})
        for round_no in range(rounds):
            # Rotate the order so a slow patch of a shared machine hits every variant alike.
            order = VARIANTS[round_no % 3 :] + VARIANTS[: round_no % 3]
            for variant in order:
                seconds = save_with(variant, bare, wrapped, f"r{round_no}-{variant}", files)
                per_kind[variant].append(seconds)
        set_trigger(False)
    results = {}
    for kind, variants in timings.items():
        medians = {name: statistics.median(values) for name, values in variants.items()}
        ratios = {
            name: statistics.median(v / b for v, b in zip(values, variants["bare"], strict=True))
            for name, values in variants.items()
        }
        results[kind] = {
            "median_s": {name: round(value, 4) for name, value in medians.items()},
            "per_file_ms": {
                name: round(value / files * 1000, 3) for name, value in medians.items()
            },
            "median_ratio_vs_bare": {name: round(value, 2) for name, value in ratios.items()},
            "all_s": {name: [round(v, 4) for v in values] for name, values in variants.items()},
        }
    return {
        "benchmark": "save N small files: bare storage vs EventingStorage",
        "files_per_round": files,
        "rounds": rounds,
        "ratio": "median over rounds of (variant time / bare time in the same round)",
        "database": connection.vendor,
        "broker": settings.CELERY_BROKER_URL.split(":", 1)[0],
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "event_rows_written": EventLog.objects.count(),
        "results": results,
    }


def print_table(report: dict) -> None:
    """A short table: median ms per file and ratio to the bare storage."""
    print(
        f"{report['files_per_round']} files x {report['rounds']} rounds, "
        f"{report['database']} + {report['broker']} broker; "
        "median ms per file (median ratio to bare)"
    )
    print(f"{'storage':<20}{'bare':>16}{'no trigger':>18}{'one trigger':>18}")
    for kind, result in report["results"].items():
        cells = [
            f"{result['per_file_ms'][name]:.3f} ms ({result['median_ratio_vs_bare'][name]:.2f}x)"
            for name in VARIANTS
        ]
        print(f"{kind:<20}{cells[0]:>16}{cells[1]:>18}{cells[2]:>18}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        folder = Path(tmp)
        setup_django(folder / "var")
        report = run(args.files, args.rounds, folder / "media")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"written to {shown}")


if __name__ == "__main__":
    main()
