"""Does an event pass a trigger's filter, path pattern and watched fields?"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from typing import Any

_MISSING = object()
# Longest key value stored as it is; a longer one is stored as "#" + its MD5 (event_logs'
# column holds 200 characters). Database capture computes the same in SQL.
MAX_KEY_CHARS = 160


def lookup(data: Any, path: str) -> Any:
    """Follow a dotted path through nested dicts; `_MISSING` when a step is absent."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        else:
            return _MISSING
    return current


def _matches_one(actual: Any, expected: Any) -> bool:
    if isinstance(expected, list):
        return actual is not _MISSING and actual in expected
    if isinstance(expected, dict):
        for op, operand in expected.items():
            if op == "in" and not (actual is not _MISSING and actual in operand):
                return False
            if op == "not_in" and actual is not _MISSING and actual in operand:
                return False
            if op == "eq" and actual != operand:
                return False
            if op == "ne" and actual == operand:
                return False
            if op == "exists" and (actual is not _MISSING) != bool(operand):
                return False
        return True
    return actual is not _MISSING and actual == expected


def matches_filter(filter_spec: dict, data: Any) -> bool:
    """True when every path in `filter_spec` matches `data` (an empty filter matches all)."""
    return all(_matches_one(lookup(data, path), exp) for path, exp in filter_spec.items())


def matches_path(pattern: str, name: str) -> bool:
    """True when a file `name` matches the glob `pattern` (empty pattern matches all)."""
    return not pattern or fnmatch.fnmatchcase(name, pattern)


def watched_change(watch_fields: tuple[str, ...], changed: list[str]) -> bool:
    """True when no fields are watched or one of the watched fields changed."""
    return not watch_fields or any(field in changed for field in watch_fields)


def ordering_value(path: str, data: Any) -> str | None:
    """The ordering key of an event: the text of the value at `path` (as PostgreSQL's `#>>`
    writes it), or None when the trigger has no key or the payload lacks it (unordered)."""
    if not path:
        return None
    value = lookup(data, path)
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    if len(text) > MAX_KEY_CHARS:
        return "#" + hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
    return text
