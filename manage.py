#!/usr/bin/env python
"""Django's command-line utility for the standalone Eventing project."""

import os
import sys


def main() -> None:
    """Run administrative tasks."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Django's, with the command as the actor of the DB events it causes.
    from eventing.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
