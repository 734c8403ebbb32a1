"""The periodic tasks Eventing needs, as a Celery beat schedule a project can merge into its own.

The sweeper runs every EVENTING["SWEEP_INTERVAL_S"], the interval /healthz and the dashboard
judge sweeps by. A settings module builds the schedule before any setting can be read, so the
sweeper's entry reads the interval when beat reads the entry (when it starts), not when built.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from eventing.conf import settings

SWEEP_ENTRY_KEYS = ("task", "schedule", "options")
# How often beat looks for due CRON ticks: a tick fires at most this late (seconds).
CRON_CHECK_EVERY_S = 5


def sweep_entry(interval_s: float) -> dict[str, Any]:
    """The beat entry running the sweeper every `interval_s` seconds."""
    return {
        "task": "eventing.sweep",
        "schedule": timedelta(seconds=interval_s),
        # A sweep older than its interval is useless: the next one supersedes it.
        "options": {"expires": max(interval_s * 5, 5)},
    }


class SweepEntry(Mapping):
    """The sweeper's beat entry at EVENTING["SWEEP_INTERVAL_S"], read whenever beat reads it."""

    def __getitem__(self, key: str) -> Any:
        return sweep_entry(float(settings.SWEEP_INTERVAL_S))[key]

    def __iter__(self) -> Iterator[str]:
        return iter(SWEEP_ENTRY_KEYS)

    def __len__(self) -> int:
        return len(SWEEP_ENTRY_KEYS)

    def __repr__(self) -> str:
        return "SweepEntry(every EVENTING['SWEEP_INTERVAL_S'])"


def beat_schedule(sweep_interval_s: float | None = None) -> dict[str, Mapping[str, Any]]:
    """Return the beat entries for the sweeper, CRON triggers and the daily retention cleanup.

    The sweeper follows EVENTING["SWEEP_INTERVAL_S"]. `sweep_interval_s` (kept for projects
    that pass it) fixes another interval, which /healthz and the dashboard do not know about.
    """
    sweep = SweepEntry() if sweep_interval_s is None else sweep_entry(sweep_interval_s)
    return {
        "eventing-sweep": sweep,
        "eventing-cron": {
            "task": "eventing.cron",
            "schedule": timedelta(seconds=CRON_CHECK_EVERY_S),
            # A late check is superseded by the next one, which finds the same ticks.
            "options": {"expires": CRON_CHECK_EVERY_S * 2},
        },
        "eventing-cleanup": {
            "task": "eventing.cleanup",
            "schedule": timedelta(days=1),
        },
        # Partitioned event tables only (eventing.ops.partitions); otherwise it does nothing.
        "eventing-partitions": {
            "task": "eventing.partitions",
            "schedule": timedelta(hours=1),
        },
    }
