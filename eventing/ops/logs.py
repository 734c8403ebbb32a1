"""Structured log lines: every record carries `event_id` and `trigger` (when it has them).

Use in `LOGGING`: the filter `eventing.ops.logs.EventContextFilter` gives every record both
fields (`-` when absent, so format strings may name them); the formatters are
`eventing.ops.logs.KeyValueFormatter` (text, `key=value` suffix) and
`eventing.ops.logs.JsonFormatter`
(one JSON object per line, for log pipelines).
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
