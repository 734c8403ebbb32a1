"""Name every failed test of `make test`'s stages again at its end, from their JUnit reports.

    python -m tests.failures var/test-reports

A CI log that keeps only its tail still says which test failed in an early stage, and why in
one line. Prints nothing when every test passed.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def failures(report: Path) -> list[str]:
    """ "<test id>: <first line of the error>" for each failed or erroring test of `report`."""
    try:
        root = ET.parse(report).getroot()
    except ET.ParseError as exc:
        return [f"(unreadable report {report.name}: {exc})"]
    found = []
    for case in root.iter("testcase"):
        for problem in (*case.findall("failure"), *case.findall("error")):
            test = f"{case.get('classname')}::{case.get('name')}"
            first = (problem.get("message") or problem.text or "").strip().splitlines()
            found.append(f"{test}: {first[0][:200] if first else problem.tag}")
    return found


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path("var/test-reports")
    for report in sorted(folder.glob("*.xml")):
        lines = failures(report)
        if lines:
            print(f"== make test: failed in stage {report.stem}:")
            for line in lines:
                print(f"   {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
