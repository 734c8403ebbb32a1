"""A process that writes orders until told to stop: one side of the switch-over test.

    python -m tests.support.capture_db_writer_process TAG STOP_FILE

Runs in the mode EVENTING_TEST_CAPTURE gives it; each order's status is TAG-n, one autocommit
create at a time, at most for MAX_SECONDS; prints how many it wrote.
"""

from __future__ import annotations

import os
import sys
import time

MAX_SECONDS = 120


def main(tag: str, stop_file: str) -> None:
    import django

    django.setup()
    from tests.testapp.models import Order

    written = 0
    deadline = time.monotonic() + MAX_SECONDS
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        Order.objects.create(status=f"{tag}-{written}")
        written += 1
    print(written, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
