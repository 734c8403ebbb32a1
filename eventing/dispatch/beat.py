"""The periodic tasks Eventing needs, as a Celery beat schedule a project can merge into its own."""

from datetime import timedelta


def beat_schedule(sweep_interval_s: float = 1.0) -> dict:
    """Return the beat entries for the sweeper and the daily retention cleanup."""
    return {
        "eventing-sweep": {
            "task": "eventing.sweep",
            "schedule": timedelta(seconds=sweep_interval_s),
            # A sweep older than its interval is useless: the next one supersedes it.
            "options": {"expires": max(sweep_interval_s * 5, 5)},
        },
        "eventing-cleanup": {
            "task": "eventing.cleanup",
            "schedule": timedelta(days=1),
        },
    }
