"""Beat's schedule: the sweeper runs every EVENTING["SWEEP_INTERVAL_S"], the interval /healthz
judges sweeps by, with no second value in the beat schedule."""

from __future__ import annotations

from datetime import timedelta

from celery import Celery
from celery.beat import PersistentScheduler, Scheduler

from config.celery import app as project_app
from eventing.dispatch.beat import beat_schedule
from eventing.ops.health import sweep_stale_after_s


def entries_beat_starts_with(schedule_file) -> dict:
    """The entries `celery -A config beat` starts with (its default, file-backed scheduler)."""
    scheduler = PersistentScheduler(app=project_app, schedule_filename=str(schedule_file))
    try:
        return dict(scheduler.schedule)
    finally:
        scheduler.close()


def test_beat_sweeps_at_the_interval_eventing_is_configured_with(settings, tmp_path):
    settings.EVENTING = {**settings.EVENTING, "SWEEP_INTERVAL_S": 5}
    sweep = entries_beat_starts_with(tmp_path / "beat")["eventing-sweep"]
    assert sweep.task == "eventing.sweep"
    assert sweep.schedule.run_every == timedelta(seconds=5)
    assert sweep.options["expires"] == 25
    assert sweep_stale_after_s() == 50  # /healthz: ten intervals of the same 5 s


def test_a_beat_restarted_after_the_setting_changed_follows_it(settings, tmp_path):
    settings.EVENTING = {**settings.EVENTING, "SWEEP_INTERVAL_S": 1}
    before = entries_beat_starts_with(tmp_path / "beat")["eventing-sweep"]
    settings.EVENTING = {**settings.EVENTING, "SWEEP_INTERVAL_S": 30}
    after = entries_beat_starts_with(tmp_path / "beat")["eventing-sweep"]  # same stored file
    assert before.schedule.run_every == timedelta(seconds=1)
    assert after.schedule.run_every == timedelta(seconds=30)
    assert after.options["expires"] == 150


def test_an_interval_passed_to_beat_schedule_still_wins(settings):
    settings.EVENTING = {**settings.EVENTING, "SWEEP_INTERVAL_S": 5}
    app = Celery(set_as_current=False)
    app.conf.beat_schedule = beat_schedule(sweep_interval_s=2)
    scheduler = Scheduler(app=app)
    sweep, cleanup = scheduler.schedule["eventing-sweep"], scheduler.schedule["eventing-cleanup"]
    assert sweep.schedule.run_every == timedelta(seconds=2)
    assert sweep.options["expires"] == 10
    assert (cleanup.task, cleanup.schedule.run_every) == ("eventing.cleanup", timedelta(days=1))
