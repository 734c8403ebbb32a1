"""Benchmark settings: the test project with production timings and no debug."""

from tests.settings import *  # noqa: F403
from tests.settings import EVENTING

DEBUG = False
EVENTING.update(
    {
        "LEASE_GRACE_S": 30,
        "SWEEP_INTERVAL_S": 1,
        "TRIGGER_CACHE_TTL_S": 1.0,
        "ETA_HORIZON_S": 300,
    }
)
