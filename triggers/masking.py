"""Header values are credentials: shown masked once saved, and the mask sent back keeps them."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

MASK = "********"


def mask_headers(headers: list) -> list:
    """Headers as shown after saving: literal values replaced by the mask."""
    return [
        {**header, "value": MASK} if isinstance(header, dict) and "value" in header else header
        for header in headers or []
    ]


def unmask_headers(submitted: Any, stored: list) -> Any:
    """Put the stored value back wherever the form sent the mask; an unknown one is an error."""
    if not isinstance(submitted, list):
        return submitted
    saved = {h.get("name"): h.get("value") for h in stored or [] if isinstance(h, dict)}
    result = []
    for index, header in enumerate(submitted):
        if isinstance(header, dict) and header.get("value") == MASK:
            if saved.get(header.get("name")) is None:
                raise ValidationError(
                    f"headers[{index}]: enter the value of {header.get('name')!r}; "
                    "the mask only keeps a value saved before."
                )
            header = {**header, "value": saved[header["name"]]}
        result.append(header)
    return result
