"""Structured log lines: every record carries `event_id` and `trigger` (when it has them).

Use in `LOGGING`: the filter `eventing.ops.logs.EventContextFilter` gives every record both
fields (`-` when absent, so format strings may name them); the formatters are
`eventing.ops.logs.KeyValueFormatter` (text, `key=value` suffix) and
`eventing.ops.logs.JsonFormatter`
(one JSON object per line, for log pipelines). `eventing.ops.logs.QuietSweepsFilter` on a
handler turns Celery's three lines per sweep and per CRON check into DEBUG lines.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

CONTEXT_FIELDS = ("event_id", "trigger")
MISSING = "-"


class EventContextFilter(logging.Filter):
    """Give every record `event_id` and `trigger` attributes (`-` when the caller set none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for field in CONTEXT_FIELDS:
            if not hasattr(record, field):
                setattr(record, field, MISSING)
        return True


# Celery's own lines about every run of a task: received (worker), succeeded (trace), sent
# (beat). For the sweeper that is three INFO lines a second, for the CRON check three every 5 s.
ROUTINE_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace", "celery.beat")
# Beat's periodic tasks that log a line of their own when a run did something.
ROUTINE_TASKS = ("eventing.sweep", "eventing.cron")


class QuietSweepsFilter(logging.Filter):
    """Demote Celery's per-run INFO lines of the sweep and CRON-check tasks to DEBUG (each logs
    a line itself when a run did something), leaving every other task's lines alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or record.name not in ROUTINE_TASK_LOGGERS:
            return True
        if task_name_of(record) not in ROUTINE_TASKS:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def task_name_of(record: logging.LogRecord) -> str | None:
    """The task a Celery worker or beat record is about (None for other records)."""
    data = getattr(record, "data", None)  # the worker's and the trace's `extra`
    if isinstance(data, dict):
        return data.get("name")
    if record.name == "celery.beat" and isinstance(record.args, tuple) and len(record.args) == 2:
        return str(record.args[1])  # "Scheduler: Sending due task %s (%s)": entry, task
    return None


def context_of(record: logging.LogRecord) -> dict[str, str]:
    """The event fields a record carries (those given through `extra=`)."""
    values = {field: getattr(record, field, MISSING) for field in CONTEXT_FIELDS}
    return {field: str(value) for field, value in values.items() if value not in (None, MISSING)}


class KeyValueFormatter(logging.Formatter):
    """Plain text, with ` event_id=… trigger=…` appended when the record has them."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = context_of(record)
        if not context:
            return line
        suffix = " ".join(f"{key}={value}" for key, value in context.items())
        head, newline, rest = line.partition("\n")
        # Keep the fields on the first line so a traceback below does not separate them.
        return f"{head} {suffix}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, event_id, trigger, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **context_of(record),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
