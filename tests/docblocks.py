"""The shell and Python blocks of the docs, with what `<!-- docs-test: … -->` says to do with them.

A block runs as written unless the line before its fence is a marker:

* `<!-- docs-test: needs-server <reason> -->`: needs `make run` or another server; the scripted
  newcomer run (tests/e2e/test_newcomer.py) runs the ones it names, the docs test skips it.
* `<!-- docs-test: skip <reason> -->`: not run (the reason says what covers it instead).
* `<!-- docs-test: append <path> -->` / `write <path>`: a Python block added to (or written as)
  a file of the project the page builds.

Unmarked `bash` blocks run in bash (`-euo pipefail`); unmarked `python` blocks in
`manage.py shell -c`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.envvars import ROOT

PAGES = (
    "README.md",
    "docs/quickstart.md",
    "docs/integration.md",
    "docs/testing-your-project.md",
)
RUNNABLE = ("bash", "python")
ACTIONS = ("needs-server", "skip", "append", "write")
MARKER_RE = re.compile(r"^<!-- docs-test: (?P<action>[a-z-]+)(?: (?P<arg>.+?))? -->$")
FENCE_RE = re.compile(r"^```(?P<lang>[a-z]*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page, with its marker (if any)."""

    page: str
    line: int
    lang: str
    code: str
    action: str = ""
    arg: str = ""

    def __str__(self) -> str:
        return f"{self.page}:{self.line} ({self.lang}{', ' + self.action if self.action else ''})"


def blocks(page: str) -> list[Block]:
    """The `bash` and `python` blocks of `page` (relative to the repository), in order."""
    lines = (ROOT / page).read_text().splitlines()
    found, index = [], 0
    while index < len(lines):
        fence = FENCE_RE.match(lines[index])
        if not fence:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = MARKER_RE.match(previous.strip())
        if fence.group("lang") in RUNNABLE:
            found.append(
                Block(
                    page=page,
                    line=index + 1,
                    lang=fence.group("lang"),
                    code="\n".join(lines[index + 1 : end]) + "\n",
                    action=marker.group("action") if marker else "",
                    arg=(marker.group("arg") or "") if marker else "",
                )
            )
        index = end + 1
    return found


def every_block() -> list[Block]:
    """The runnable blocks of every page the docs test covers."""
    return [block for page in PAGES for block in blocks(page)]


def the_block(page: str, contains: str) -> Block:
    """The one block of `page` whose code contains `contains`."""
    [block] = [b for b in blocks(page) if contains in b.code]
    return block
