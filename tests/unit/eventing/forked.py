"""Run a function in a forked child of the test process and get back what it answered."""

from __future__ import annotations

import os
from collections.abc import Callable


def in_forked_child(body: Callable[[], str]) -> str:
    """`body()` run in a fork of this process (as a prefork worker or gunicorn worker is made);
    its answer, or "" if it raised. The child ends without running exit handlers."""
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(writable, body().encode())
        finally:
            os._exit(0)
    os.close(writable)
    with os.fdopen(readable) as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    return answer
