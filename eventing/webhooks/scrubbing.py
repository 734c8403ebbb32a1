"""Secret values found and replaced in every form a receiver may echo them in.

A receiver that echoes its request (a debug endpoint, an error page) hands our credentials
back: the X-SC-Token with or without its `Bearer ` scheme, the webhook-signature, header
values, often re-encoded on the way (JSON escapes `\\/` or `\\u002F`, URL-encoding `%2F`, HTML
entities `&#47;`). What is stored or logged is scrubbed of all of these.
"""

from __future__ import annotations

import bisect
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
    if any(start in text for start in ESCAPE_STARTS):
        unescaped = Unescaped(text)
        for secret in secrets:
            found += [unescaped.span(*span) for span in occurrences(unescaped.plain, secret)]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


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
