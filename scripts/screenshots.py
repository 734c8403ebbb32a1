"""Copy the browser tests' screenshots that README links into docs/screenshots/, made small.

    make screenshots    # runs the browser tests, then this

The tests write full-colour PNGs to test-artifacts/screenshots/ (git-ignored); the admin's flat
colours survive a 64-colour palette, which keeps the committed copies to tens of KB each.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "test-artifacts" / "screenshots"
TARGET = ROOT / "docs" / "screenshots"
# The pages README shows, as the browser tests name them.
PAGES = (
    "dashboard-1280",
    "event-list-1280",
    "trigger-list-1280",
    "event-page-1280",
    "trigger-form",
    # The owners' portal (docs/portal.md)
    "portal-endpoints",
    "portal-new",
    "portal-delivery",
    "portal-redelivered",
    "portal-rotated",
    "portal-embedded",
)
COLOURS = 64


def optimise(source: Path, target: Path) -> int:
    """Write `source` as a palette PNG at `target`; its size in bytes."""
    with Image.open(source) as image:
        small = image.convert("RGB").quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT)
        small.save(target, optimize=True)
    return target.stat().st_size


def main() -> int:
    missing = [name for name in PAGES if not (SOURCE / f"{name}.png").exists()]
    if missing:
        print(f"missing in {SOURCE}: {', '.join(missing)}; run the browser tests", file=sys.stderr)
        return 1
    TARGET.mkdir(parents=True, exist_ok=True)
    total = 0
    for name in PAGES:
        size = optimise(SOURCE / f"{name}.png", TARGET / f"{name}.png")
        total += size
        print(f"docs/screenshots/{name}.png  {size // 1024} KB")
    print(f"total {total // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
