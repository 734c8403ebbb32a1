"""QuietSweepsFilter: Celery's received / succeeded / sending lines of the sweep and of the CRON
check are DEBUG."""

from __future__ import annotations

import logging

import pytest

from eventing.ops.logs import QuietSweepsFilter


def worker_record(logger: str, task: str) -> logging.LogRecord:
    """A record as Celery's worker strategy and trace log it (the context in `extra`)."""
    context = {"id": "abc", "name": task, "return_value": "{}", "runtime": 0.01}
    record = logging.LogRecord(logger, logging.INFO, __file__, 1, "Task %(name)s", (context,), None)
    record.data = context
    return record


def beat_record(task: str) -> logging.LogRecord:
    """Beat's 'Sending due task' record."""
    msg = "Scheduler: Sending due task %s (%s)"
    return logging.LogRecord("celery.beat", logging.INFO, __file__, 1, msg, ("entry", task), None)


@pytest.mark.parametrize(
    "record",
    [
        worker_record("celery.worker.strategy", "eventing.sweep"),
        worker_record("celery.app.trace", "eventing.sweep"),
        beat_record("eventing.sweep"),
        worker_record("celery.worker.strategy", "eventing.cron"),
        worker_record("celery.app.trace", "eventing.cron"),
        beat_record("eventing.cron"),
    ],
)
def test_the_sweeps_lines_are_dropped_at_info_and_kept_at_debug(record):
    quiet = QuietSweepsFilter()
    logger = logging.getLogger(record.name)
    level = logger.level
    try:
        logger.setLevel(logging.INFO)
        assert quiet.filter(record) is False
        logger.setLevel(logging.DEBUG)
        assert quiet.filter(record) is True
        assert record.levelname == "DEBUG"
    finally:
        logger.setLevel(level)


@pytest.mark.parametrize(
    "record",
    [
        worker_record("celery.app.trace", "eventing.deliver"),
        worker_record("celery.worker.strategy", "eventing.cleanup"),
        beat_record("eventing.cleanup"),
        logging.LogRecord(
            "eventing.maintenance.sweeper", logging.INFO, __file__, 1, "sweep", (), None
        ),
    ],
)
def test_every_other_line_is_left_alone(record):
    assert QuietSweepsFilter().filter(record) is True
    assert record.levelname == "INFO"
