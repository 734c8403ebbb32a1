"""A trigger's request transform: method, URL, query, headers and body rendered over an event.

The templates run in triggers.templating's sandbox. What they give is checked here as the
request it becomes: an absolute http(s) URL (the SSRF guard then judges its address at connect
time, like any URL), header values HTTP can carry, a body within MAX_PAYLOAD_BYTES that parses
as JSON whenever the content type says JSON. Anything else raises TransformError, which fails
the attempt for good (eventing.delivery.deliver): the same template over the same event would
fail again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from eventing.conf import settings
from eventing.runtime import PerProcess
from triggers.render_process import RendererUnavailable, RenderPool, render_isolated
from triggers.templating import TransformError
from triggers.validation import first_unprintable

DEFAULT_CONTENT_TYPE = "application/json"
# Longest URL and header value a template may give (characters).
MAX_URL_CHARS = 8 * 1024
MAX_HEADER_CHARS = 8 * 1024
JSON_CONTENT_TYPE_RE = re.compile(r"^\s*application/([\w.+-]+\+)?json\s*(;|$)", re.I)

__all__ = ["RendererUnavailable", "Shaped", "TransformError", "renderers", "shape", "variables"]

# This process's template renderers (child processes): started at the first transform,
# ended by runtime.stop(); a forked process starts its own.
renderers = PerProcess(RenderPool, stop=RenderPool.stop)


@dataclass
class Shaped:
    """The request as the transform shapes it; None where the transform leaves it as is."""

    method: str = "POST"
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str = DEFAULT_CONTENT_TYPE


def variables(event, envelope: dict[str, Any], trigger, base_url: str) -> dict[str, Any]:
    """What templates see: the event's data, type, id, time, the trigger's name, the trigger's
    URL (`base_url`, placeholders resolved) and the whole CloudEvents envelope (`event`)."""
    return {
        "data": event.payload,
        "type": event.type,
        "id": str(event.id),
        "time": envelope["time"],
        "trigger": trigger.name,
        "base_url": base_url,
        "event": envelope,
    }


def shape(trigger, context: dict[str, Any]) -> Shaped:
    """Render the trigger's transform over `context`; TransformError names the failing part."""
    shaped = Shaped(method=trigger.transform_method or "POST")
    for name, source in (trigger.transform_headers or {}).items():
        value = run(source, context, f"header {name}", MAX_HEADER_CHARS, "MAX_HEADER_CHARS")
        check_header(name, value)
        if value:  # an empty result leaves the header out (a conditional header)
            shaped.headers[name] = value
    for name in list(shaped.headers):
        if name.lower() == "content-type":
            shaped.content_type = shaped.headers.pop(name)
    if trigger.transform_url or trigger.transform_query:
        url = context["base_url"]
        if trigger.transform_url:
            url = run(
                trigger.transform_url, context, "URL template", MAX_URL_CHARS, "MAX_URL_CHARS"
            ).strip()
        shaped.url = with_query(url, query(trigger, context))
        check_url(shaped.url)
    if trigger.transform_body:
        text = run(
            trigger.transform_body,
            context,
            "body template",
            settings.MAX_PAYLOAD_BYTES,
            "MAX_PAYLOAD_BYTES",
        )
        if is_json(shaped.content_type) and text.strip():
            check_json(text)
        shaped.body = text.encode()
    return shaped


def run(source: str, context: dict[str, Any], what: str, max_chars: int, bound: str) -> str:
    """One template rendered within the limits, in a child process (a hard deadline and a
    memory limit); its errors say which template failed and which bound it hit."""
    try:
        return render_isolated(
            source,
            context,
            pool=renderers(),
            max_chars=max_chars,
            time_s=settings.TRANSFORM_RENDER_MS / 1000,
            memory_mb=settings.TRANSFORM_MEMORY_MB,
            size_bound=bound,
            time_bound="TRANSFORM_RENDER_MS",
        )
    except TransformError as exc:
        raise TransformError(f"{what}: {exc}") from None


def query(trigger, context: dict[str, Any]) -> list[tuple[str, str]]:
    """The query parameters, each rendered."""
    return [
        (name, run(source, context, f"query parameter {name}", MAX_URL_CHARS, "MAX_URL_CHARS"))
        for name, source in (trigger.transform_query or {}).items()
    ]


def with_query(url: str, params: list[tuple[str, str]]) -> str:
    """`url` with `params` added to its query string (percent-encoded)."""
    if not params:
        return url
    base, _, fragment = url.partition("#")
    joiner = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        joiner = ""
    url = base + joiner + urlencode(params)
    return f"{url}#{fragment}" if fragment else url


def check_url(url: str) -> None:
    """An absolute http(s) URL with nothing that could split the request line."""
    if len(url) > MAX_URL_CHARS:
        raise TransformError(f"URL template: the URL is over {MAX_URL_CHARS} characters")
    bad = first_unprintable(url)
    if bad or " " in url:
        raise TransformError(f"URL template: the URL may not contain {bad or 'spaces'}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransformError(
            f"URL template: {url[:200]!r} is not an absolute http:// or https:// URL"
        )


def check_header(name: str, value: str) -> None:
    """A value HTTP can carry: Latin-1 text without control characters."""
    bad = first_unprintable(value, allow_tab=True)
    if bad:
        raise TransformError(f"header {name}: the value may not contain {bad}")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise TransformError(
            f"header {name}: the value must be Latin-1 text (percent- or base64-encode it)"
        ) from None


def is_json(content_type: str) -> bool:
    """Whether a content type is JSON (application/json, application/*+json)."""
    return bool(JSON_CONTENT_TYPE_RE.match(content_type))


def check_json(text: str) -> None:
    """The body template's output must parse when it is sent as JSON."""
    try:
        json.loads(text)
    except ValueError as exc:
        raise TransformError(f"body template: the output is not valid JSON: {exc}") from None
    except RecursionError:
        raise TransformError("body template: the output nests too deeply") from None
