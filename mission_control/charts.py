"""Tiny server-side SVG charts: no JavaScript library, no CDN."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


def nice_max(value: float) -> float:
    """A round upper bound for the y axis (1, 2, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def line_chart(
    points: Sequence[tuple[str, float | None]],
    *,
    title: str,
    width: int = 640,
    height: int = 140,
    unit: str = "/min",
) -> SafeString:
    """An SVG area chart of (label, value) points, first and last labels under the axis; a
    None value (not counted yet) leaves a gap."""
    pad_left, pad_bottom, pad_top = 60, 18, 8
    inner_w, inner_h = width - pad_left - 4, height - pad_bottom - pad_top
    top = nice_max(max((v for _, v in points if v is not None), default=0))
    count = max(len(points) - 1, 1)
    coords = [
        None
        if value is None
        else (pad_left + inner_w * i / count, pad_top + inner_h * (1 - value / top))
        for i, (_, value) in enumerate(points)
    ]
    base = pad_top + inner_h
    shapes = format_html_join(
        "",
        '<polygon class="area" points="{}"/><polyline class="line" points="{}"/>',
        (area_and_line(run, base) for run in runs(coords)),
    )
    first = points[0][0] if points else ""
    last = points[-1][0] if points else ""
    # Dots with a tooltip each, only where there are few enough to point at.
    dots = (
        (f"{xy[0]:.1f}", f"{xy[1]:.1f}", label, _fmt(value))
        for xy, (label, value) in zip(coords, points, strict=True)
        if xy is not None
    )
    circles = (
        format_html_join("", '<circle cx="{}" cy="{}" r="1.5"><title>{}: {}</title></circle>', dots)
        if len(points) <= 120
        else ""
    )
    return format_html(
        '<svg class="mc-chart" role="img" aria-label="{title}" viewBox="0 0 {w} {h}" '
        'width="100%" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">'
        "<title>{title}</title>"
        '<line class="axis" x1="{pl}" y1="{base}" x2="{right}" y2="{base}"/>'
        '<line class="axis" x1="{pl}" y1="{pt}" x2="{pl}" y2="{base}"/>'
        '<text class="tick" x="{tx}" y="{ty_top}" text-anchor="end">{top}{unit}</text>'
        '<text class="tick" x="{tx}" y="{base}" text-anchor="end">0</text>'
        "{shapes}{circles}"
        '<text class="tick" x="{pl}" y="{ty_bottom}">{first}</text>'
        '<text class="tick" x="{right}" y="{ty_bottom}" text-anchor="end">{last}</text>'
        "</svg>",
        title=title,
        w=width,
        h=height,
        pl=pad_left,
        pt=pad_top,
        base=f"{base:.1f}",
        right=pad_left + inner_w,
        tx=pad_left - 4,
        ty_top=pad_top + 8,
        top=_fmt(top),
        unit=unit,
        shapes=shapes,
        circles=circles,
        first=first,
        last=last,
        ty_bottom=height - 4,
    )


def runs(coords: Sequence[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """The unbroken stretches of `coords` between None gaps."""
    stretches: list[list[tuple[float, float]]] = [[]]
    for xy in coords:
        if xy is None:
            if stretches[-1]:
                stretches.append([])
        else:
            stretches[-1].append(xy)
    return [stretch for stretch in stretches if stretch]


def area_and_line(run: list[tuple[float, float]], base: float) -> tuple[str, str]:
    """The area polygon's and the line's points of one unbroken stretch."""
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
    return f"{run[0][0]:.1f},{base:.1f} {line} {run[-1][0]:.1f},{base:.1f}", line


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.2f}"
