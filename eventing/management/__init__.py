"""Eventing's management commands, and the opt-in that makes a command the actor of its writes.

Django has no signal for a command's start, and Eventing patches nothing of Django's: a
project whose commands should be the `actor` of the DB events they cause runs `manage.py`
through `execute_from_command_line` below (the standalone project does).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from django.core.management import execute_from_command_line as django_execute

from eventing.capture.actor import actor, current_actor


def command_actor(argv: Sequence[str]) -> str | None:
    """`manage:<command>` for a command line, None when it names no command (help, version)."""
    name = argv[1] if len(argv) > 1 else ""
    if not name or name.startswith("-") or name in ("help", "version"):
        return None
    return f"manage:{name}"


def execute_from_command_line(argv: Sequence[str] | None = None) -> None:
    """Django's `execute_from_command_line`, with the command as the actor of its writes.

    An actor already set (the line run inside `eventing.actor()`) is kept.
    """
    argv = list(sys.argv if argv is None else argv)
    name = command_actor(argv)
    if name is None or current_actor() is not None:
        django_execute(argv)
        return
    with actor(name):
        django_execute(argv)
