"""Pieces of a long secret are found the same way in short and long texts: the anchor search
reads a short text position by position and searches a long one anchor by anchor."""

from __future__ import annotations

import random

import pytest

from eventing.webhooks.scrubbing import (
    FRAGMENT_ANCHOR,
    REDACTED,
    anchor_hits,
    fragment_forms,
    redact,
)

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6ImJlbmNoIiwianRpIjoiMDEyMzQ1Njc4OWFiY2RlZiJ9.c2lnbmF0dXJl"


def every_hit(text: str, anchors: dict[str, list[int]]) -> list[tuple[int, int]]:
    """What anchor_hits must find, the slow way."""
    return [
        (start, offset)
        for start in range(len(text) - FRAGMENT_ANCHOR + 1)
        for offset in anchors.get(text[start : start + FRAGMENT_ANCHOR], ())
    ]


@pytest.mark.parametrize("repeat", [1, 3, 40])  # short texts, and long ones
def test_anchor_hits_finds_every_anchor_in_short_and_long_texts(repeat):
    rnd = random.Random(repeat)
    for form, anchors in fragment_forms((TOKEN,)):
        for _ in range(50):
            piece = form[rnd.randrange(len(form)) :][: rnd.randrange(8, 40)]
            text = (f"x{piece}y" + "".join(rnd.choice("ab.-") for _ in range(5))) * repeat
            assert anchor_hits(text, anchors) == every_hit(text, anchors)


@pytest.mark.parametrize("echo", [TOKEN[10:30], TOKEN[::-1][5:25]])
def test_a_split_or_reversed_echo_is_redacted_in_a_header_and_in_a_body(echo):
    header = f"debug={echo}"
    body = '{"echo": "' + echo + '", "padding": "' + "p" * 5000 + '"}'
    for text in (header, body):
        assert echo not in redact(text, (TOKEN,))
        assert REDACTED in redact(text, (TOKEN,))
