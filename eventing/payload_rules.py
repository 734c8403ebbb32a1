"""What an event payload may hold: JSON every receiver and database reads back unchanged."""

from __future__ import annotations

import json
import math
from typing import Any

from django.core.exceptions import ValidationError

from .conf import settings

# Deeper nesting than this is refused: parsers (and PostgreSQL's jsonb) have depth limits, and
# no sane event needs more.
MAX_DEPTH = 100


def check_payload(payload: Any) -> int:
    """Refuse a payload that cannot travel as JSON unchanged; return its size in bytes.

    Raises ValidationError({"payload": …}) naming where the problem is: a value that is not
    JSON (NaN, Infinity, a set, a date…), a top-level null, a string PostgreSQL cannot store
    (NUL) or UTF-8 cannot encode (a lone surrogate), nesting deeper than MAX_DEPTH, or a
    payload larger than EVENTING["MAX_PAYLOAD_BYTES"].
    """
    if payload is None:
        # The row's payload column cannot tell JSON null from "missing": ask for {} instead.
        raise ValidationError(
            {"payload": "A payload is required; send {} for an event without data."}
        )
    check_value(payload, "payload", 0)
    try:
        encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValidationError(
            {"payload": f"The payload cannot be encoded as JSON: {exc}"}
        ) from None
    size = len(encoded.encode())
    limit = settings.MAX_PAYLOAD_BYTES
    if size > limit:
        raise ValidationError(
            {
                "payload": f"The payload is {size} bytes of JSON; the limit is {limit} "
                "(EVENTING['MAX_PAYLOAD_BYTES'])."
            }
        )
    return size


def check_value(value: Any, where: str, depth: int) -> None:
    """Walk `value` (recursion is bounded by MAX_DEPTH) and refuse its first bad part."""
    if depth > MAX_DEPTH:
        raise ValidationError({"payload": f"{where}: nested deeper than {MAX_DEPTH} levels."})
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(
                {
                    "payload": f"{where}: {value} is not a JSON number (NaN and Infinity are not "
                    "allowed)."
                }
            )
        return
    if isinstance(value, str):
        check_string(value, where)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(
                    {"payload": f"{where}: object keys must be strings, not {type(key).__name__}."}
                )
            check_string(key, f"{where} (key)")
            check_value(item, f"{where}.{key[:40]}", depth + 1)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_value(item, f"{where}[{index}]", depth + 1)
        return
    raise ValidationError(
        {
            "payload": f"{where}: a {type(value).__name__} is not a JSON value; send strings, "
            "numbers, booleans, null, lists and objects."
        }
    )


def check_string(text: str, where: str) -> None:
    """Refuse NUL (PostgreSQL cannot store it) and lone surrogates (not encodable as UTF-8)."""
    if "\x00" in text:
        raise ValidationError({"payload": f"{where}: strings may not contain the NUL character."})
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            {"payload": f"{where}: the string holds a lone surrogate, which is not valid Unicode."}
        ) from None
