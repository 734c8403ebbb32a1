"""Every owner-facing route, read from the URLconf: the isolation test walks them all.

A route is owner-facing when its path starts with one of OWNER_PREFIXES; a route added under
them later is walked without editing the test. Extend OWNER_PREFIXES when owners get another
area (the portal's pages).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

OWNER_PREFIXES = ("api/eventing/subscriptions/", "api/eventing/catalog/")
# Methods every view answers without acting (CORS preflight, HEAD mirrors GET).
PASSIVE = {"options", "head"}


@dataclass(frozen=True)
class Route:
    """One URL pattern: its path as written, its reverse name, keyword names, methods."""

    path: str
    name: str
    kwargs: tuple[str, ...]
    methods: tuple[str, ...]


def methods_of(pattern: URLPattern) -> tuple[str, ...]:
    """The HTTP methods the pattern's view acts on (a viewset's action map, else its handlers)."""
    callback = pattern.callback
    actions = getattr(callback, "actions", None)
    if actions:
        return tuple(sorted(set(actions) - PASSIVE))
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is None:
        return ("get", "post")
    return tuple(
        sorted(
            m for m in view_class.http_method_names if m not in PASSIVE and hasattr(view_class, m)
        )
    )


def walk(resolvers, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    """Every URL pattern under `resolvers`, with its full path and reverse name."""
    for entry in resolvers:
        text = str(entry.pattern).lstrip("^").rstrip("$").replace("\\Z", "")
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry.url_patterns, prefix + text, ns)
        elif isinstance(entry, URLPattern) and entry.name:
            yield Route(
                path=prefix + text,
                name=namespace + entry.name,
                kwargs=tuple(entry.pattern.regex.groupindex),
                methods=methods_of(entry),
            )


def owner_routes() -> list[Route]:
    """The owner-facing routes of the project's URLconf."""
    return [r for r in walk(get_resolver().url_patterns) if r.path.startswith(OWNER_PREFIXES)]
