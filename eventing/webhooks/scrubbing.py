"""Secret values found and replaced in every form a receiver may echo them in.

A receiver that echoes its request (a debug endpoint, an error page) hands our credentials
back: the X-SC-Token with or without its `Bearer ` scheme, the webhook-signature, header
values, often re-encoded on the way (JSON escapes `\\/` or `\\u002F`, URL-encoding `%2F`, HTML
entities `&#47;`). What is stored or logged is scrubbed of all of these, and of pieces of
them: a receiver that splits a token (a JWT's three parts, a value wrapped over lines) or
reverses it still echoes the credential, so any run of MIN_FRAGMENT characters or more of a
long secret, forwards or reversed, is scrubbed too.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable

REDACTED = "[redacted]"
# Shorter values are not scrubbed: replacing every "1" in a body would hide the answer, and a
# credential that short protects nothing anyway.
MIN_SECRET_LENGTH = 6
# `Bearer <token>`, `Basic <b64>`, `Token <t>`: the credentials are also echoed without scheme.
AUTH_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*\s+(\S.*)$", re.S)
# Standard Webhooks: `v1,<b64>` (space-separated when several), `whsec_<b64>` secrets.
SIGNATURE_RE = re.compile(r"(?:^|\s)v\d+[a-z]?,(\S+)")
SECRET_PREFIXES = ("whsec_",)
# Secrets this long are also scrubbed piece by piece: any run of MIN_FRAGMENT characters of
# one (or of it reversed). Pieces are found from anchors of FRAGMENT_ANCHOR characters taken
# every FRAGMENT_ANCHOR characters of the secret, so every run of 2 * FRAGMENT_ANCHOR - 1
# characters is found, and most shorter ones down to MIN_FRAGMENT.
MIN_FRAGMENT_SECRET = 24
MIN_FRAGMENT = 12
FRAGMENT_ANCHOR = 8
# One escaped character: JSON `\uXXXX` and `\/`-style escapes (any number of backslashes, as
# when JSON is nested in JSON), URL-encoding (also double: %252F), HTML character references.
ESCAPE_RE = re.compile(
    r"\\+u([0-9a-fA-F]{4})"
    r"|\\+([^\\u])"
    r"|%(?:25)*([0-7][0-9a-fA-F])"
    r"|&#[xX]0*([0-9a-fA-F]{1,6});?"
    r"|&#0*([0-9]{1,7});?"
)
ESCAPE_STARTS = ("\\", "%", "&#")


def forms(value: str) -> list[str]:
    """`value` and the parts of it that are credentials on their own."""
    found = [value]
    scheme = AUTH_SCHEME_RE.match(value)
    if scheme:
        found.append(scheme.group(1).strip())
    found += SIGNATURE_RE.findall(value)
    found += [value[len(p) :] for p in SECRET_PREFIXES if value.startswith(p)]
    return found


def secret_values(values: Iterable) -> tuple[str, ...]:
    """The distinct values worth scrubbing (with their bare forms), longest first."""
    kept = {
        form
        for value in values
        if value
        for form in forms(str(value))
        if len(form) >= MIN_SECRET_LENGTH
    }
    return tuple(sorted(kept, key=len, reverse=True))


class Unescaped:
    """`text` with its escapes decoded, and a map back to positions in `text`.

    Segments are (start in plain, start in text, length in text, escaped): an escaped segment
    is one plain character spelled by `length` characters of `text`.
    """

    def __init__(self, text: str) -> None:
        parts: list[str] = []
        self.starts: list[int] = []
        self.segments: list[tuple[int, int, int, bool]] = []
        plain = done = 0
        for match in ESCAPE_RE.finditer(text):
            if match.start() > done:
                self._add(parts, text[done : match.start()], plain, done, escaped=False)
                plain += match.start() - done
            self._add(parts, decoded(match), plain, match.start(), escaped=True, end=match.end())
            plain += 1
            done = match.end()
        if done < len(text):
            self._add(parts, text[done:], plain, done, escaped=False)
        self.plain = "".join(parts)

    def _add(self, parts, chars, plain, start, *, escaped, end=0) -> None:
        parts.append(chars)
        self.starts.append(plain)
        length = end - start if escaped else len(chars)
        self.segments.append((plain, start, length, escaped))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Where plain[start:end] is spelled in the original text."""
        return self._position(start)[0], self._position(end - 1)[1]

    def _position(self, index: int) -> tuple[int, int]:
        plain, start, length, escaped = self.segments[bisect.bisect_right(self.starts, index) - 1]
        if escaped:
            return start, start + length
        offset = start + index - plain
        return offset, offset + 1


def decoded(match: re.Match) -> str:
    """The character one escape spells (a replacement character when it spells none)."""
    unicode, quoted, percent, hexref, decref = match.groups()
    if quoted is not None:
        return quoted
    code = int(unicode or percent or hexref, 16) if decref is None else int(decref)
    return chr(code) if code < 0x110000 else "\ufffd"


def spans(text: str, secrets: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where in `text` a secret appears, literally or escaped, as merged (start, end) pairs."""
    found = []
    for secret in secrets:
        found += occurrences(text, secret)
    found += fragments(text, secrets)
    if any(start in text for start in ESCAPE_STARTS):
        unescaped = Unescaped(text)
        plain_spans = fragments(unescaped.plain, secrets)
        for secret in secrets:
            plain_spans += occurrences(unescaped.plain, secret)
        found += [unescaped.span(*span) for span in plain_spans]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def fragments(text: str, secrets: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where in `text` a run of MIN_FRAGMENT or more characters of a long secret (forwards or
    reversed) appears: a split or reversed echo."""
    found = []
    if len(text) < MIN_FRAGMENT:
        return found
    for form, anchors in fragment_forms(secrets):
        end = -1
        for start, offset in anchor_hits(text, anchors):
            if start + FRAGMENT_ANCHOR <= end:
                continue  # inside the run just found: widening it again finds nothing new
            span = widened(text, form, start, offset)
            end = max(end, span[1])
            if span[1] - span[0] >= MIN_FRAGMENT:
                found.append(span)
    return found


@functools.lru_cache(maxsize=64)
def fragment_forms(secrets: tuple[str, ...]) -> tuple[tuple[str, dict[str, list[int]]], ...]:
    """The long secrets, forwards and reversed, each with its anchors (text → offsets in it).

    Worked out once per set of secrets: a delivery scrubs several texts (the logged URL and
    headers, the reply's headers and body) with the same ones.
    """
    forms = []
    long_ones = [secret for secret in secrets if len(secret) >= MIN_FRAGMENT_SECRET]
    for index, secret in enumerate(long_ones):
        if any(secret in longer for longer in long_ones[:index]):
            continue  # its pieces are pieces of a longer one (the token within `Bearer …`)
        for form in (secret, secret[::-1]):
            anchors: dict[str, list[int]] = {}
            for offset in range(0, len(form) - FRAGMENT_ANCHOR + 1, FRAGMENT_ANCHOR):
                anchors.setdefault(form[offset : offset + FRAGMENT_ANCHOR], []).append(offset)
            forms.append((form, anchors))
    return tuple(forms)


def anchor_hits(text: str, anchors: dict[str, list[int]]) -> list[tuple[int, int]]:
    """Every (start in text, offset in the secret) where an anchor appears, in order.

    A short text is read position by position (one lookup each); a long one is searched for
    each anchor (str.find, in C): whichever takes fewer steps.
    """
    hits = []
    if len(text) <= len(anchors) * FRAGMENT_ANCHOR:
        for start in range(len(text) - FRAGMENT_ANCHOR + 1):
            for offset in anchors.get(text[start : start + FRAGMENT_ANCHOR], ()):
                hits.append((start, offset))
        return hits
    for anchor, offsets in anchors.items():
        start = text.find(anchor)
        while start >= 0:
            hits += [(start, offset) for offset in offsets]
            start = text.find(anchor, start + 1)
    return sorted(hits)


def widened(text: str, secret: str, start: int, offset: int) -> tuple[int, int]:
    """The whole run around text[start:] == secret[offset:] that text and secret share."""
    left, inner = start, offset
    while left > 0 and inner > 0 and text[left - 1] == secret[inner - 1]:
        left, inner = left - 1, inner - 1
    right, inner = start, offset
    while right < len(text) and inner < len(secret) and text[right] == secret[inner]:
        right, inner = right + 1, inner + 1
    return left, right


def occurrences(text: str, secret: str) -> list[tuple[int, int]]:
    """Every (start, end) of `secret` in `text`."""
    found = []
    start = text.find(secret)
    while start >= 0:
        found.append((start, start + len(secret)))
        start = text.find(secret, start + 1)
    return found


def redact(text: str, secrets: tuple[str, ...], cut: int | None = None) -> str:
    """`text` with every secret, in any of its forms, replaced by [redacted].

    With `cut`, only text[:cut] is kept, but a secret running across the cut is still found
    (in the text beyond it) and redacted whole rather than left half visible.
    """
    if not text or not secrets:
        return text if cut is None else text[:cut]
    end = len(text) if cut is None else min(cut, len(text))
    parts, done = [], 0
    for start, stop in spans(text, secrets):
        if start >= end:
            break
        parts += [text[done:start], REDACTED]
        done = stop
    if done < end:
        parts.append(text[done:end])
    return "".join(parts)


def margin(secrets: tuple[str, ...]) -> int:
    """How far past a cut to read so a secret there is recognised whole, escaped or not."""
    # The longest escapes (`\\u002F`, `%252F`, `&#x2F;`) spell a character with about 6.
    return 8 * max((len(secret) for secret in secrets), default=0)
