"""Templates rendered in a child process: a hard deadline and a memory limit whatever they do.

The sandbox's own checks (triggers.templating) stop a template between steps; one long
C-level operation (sorting or splitting a large value) runs to its end, and a process that
builds gigabytes takes the worker with it. Here each render runs in a child process that
holds a memory limit (RLIMIT_AS) and is killed when the deadline passes; the caller gets a
TransformError naming the bound, and the next render gets a fresh child.

Children are kept and reused (a render costs a round trip over a pipe, not a process start),
at most MAX_CHILDREN per pool; threads wait for a free one. The child starts with an empty
environment: templates never reach environment values, nor anything else of the parent.
`triggers` imports nothing from `eventing`: the caller owns the pool (eventing keeps one per
process in its runtime, which stops its children and gives a forked process its own).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from triggers.templating import TransformError, render

# Children one process keeps; the threads of a worker share them.
MAX_CHILDREN = 4
# How long a new child may take to start (seconds): not counted against a render's deadline.
START_TIMEOUT_S = 10.0
# Past the render's own deadline, how long the parent waits for the child's answer before it
# kills it (seconds): the child's checks answer first whenever they get the chance.
KILL_GRACE_S = 0.005
# The package root the child imports `triggers` from.
ROOT = str(Path(__file__).resolve().parent.parent)
BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from triggers.render_process import serve; serve(int(sys.argv[2]))"
)


class RendererUnavailable(RuntimeError):
    """No child could render (it would not start, or died before reading the template): not
    the template's fault, so the attempt may be tried again."""


class RenderChild:
    """One child process and the pipe to it."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-I", "-c", BOOTSTRAP, ROOT, str(memory_mb)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={},
                close_fds=True,
            )
        except OSError as exc:
            raise RendererUnavailable(f"the template renderer did not start: {exc}") from None
        self.buffer = b""
        self.killed = False
        if self.read_line(time.monotonic() + START_TIMEOUT_S) != b"ready":
            self.kill()
            raise RendererUnavailable(
                f"the template renderer did not start (within {memory_mb} MB, TRANSFORM_MEMORY_MB)"
            )

    def render(self, request: dict[str, Any], timeout_s: float) -> str:
        """Send one render; its text, or TransformError (the child's, or a killed child's)."""
        deadline = time.monotonic() + timeout_s
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        except OSError:
            self.kill()
            raise RendererUnavailable("the template renderer had stopped") from None
        line = self.read_line(deadline)
        if line is None:
            self.kill()
            raise TransformError(
                f"the template took too long to render ({request['time_bound']}); "
                "its renderer was stopped"
            )
        if line == b"":
            self.kill()
            raise TransformError(
                f"the template needs more than {self.memory_mb} MB (TRANSFORM_MEMORY_MB); "
                "its renderer was stopped"
            )
        answer = json.loads(line)
        if "error" in answer:
            if answer.get("fatal"):
                self.kill()
            raise TransformError(answer["error"])
        return answer["text"]

    def read_line(self, deadline: float) -> bytes | None:
        """The child's next line; b"" if it died, None if the deadline passed first."""
        fd = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    return None
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return b""
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    @property
    def alive(self) -> bool:
        return not self.killed and self.process.poll() is None

    def ended(self, deadline: float) -> bool:
        """Whether the (killed) child has exited by `deadline` (time.monotonic())."""
        try:
            self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        """Stop the child at once; it is reaped in the background (a child that built a large
        heap takes a while to exit, which the caller does not wait for); once."""
        if self.killed:
            return
        self.killed = True
        if self.process.poll() is None:
            self.process.kill()
            threading.Thread(target=self.process.wait, daemon=True).start()
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


class RenderPool:
    """Child processes kept for renders, shared by the threads of one process; `stop` ends them."""

    def __init__(self) -> None:
        self.idle: list[RenderChild] = []
        # Children handed to a render right now: stop() waits for them to come back.
        self.busy = 0
        self.starting = False
        # The thread starting a spare child, if one was started: stop() waits for it.
        self.spare: threading.Thread | None = None
        self.stopped = False
        self.lock = threading.Lock()
        self.returned = threading.Condition(self.lock)
        self.slots = threading.BoundedSemaphore(MAX_CHILDREN)

    def render(self, request: dict[str, Any], timeout_s: float, memory_mb: int) -> str:
        """Render on a free child (started when none is idle); the child is kept if it lives.

        A spare child is kept started in the background, so a render after one that was
        killed does not wait for a process to start.
        """
        with self.slots:
            try:
                return self.render_on_one(request, timeout_s, memory_mb)
            except RendererUnavailable:
                # An idle child that died meanwhile (killed from outside): once more, fresh.
                return self.render_on_one(request, timeout_s, memory_mb)

    def render_on_one(self, request: dict[str, Any], timeout_s: float, memory_mb: int) -> str:
        child = self.take(memory_mb)
        try:
            self.keep_spare(memory_mb)
            return child.render(request, timeout_s)
        finally:
            self.give_back(child, busy=True)

    def keep_spare(self, memory_mb: int) -> None:
        """Start one child in the background when none is idle nor already starting."""
        with self.lock:
            if self.idle or self.starting or self.stopped:
                return
            self.starting = True
            # Started under the lock, so stop() never finds it made but not started.
            self.spare = threading.Thread(target=self.replace, args=(memory_mb,), daemon=True)
            self.spare.start()

    def take(self, memory_mb: int) -> RenderChild:
        """An idle child for this memory limit, or a new one; counted busy until given back."""
        with self.lock:
            self.busy += 1
            while self.idle:
                child = self.idle.pop()
                if child.alive and child.memory_mb == memory_mb:
                    return child
                child.kill()
        try:
            return RenderChild(memory_mb)
        except BaseException:
            with self.lock:
                self.busy -= 1
                self.returned.notify_all()
            raise

    def warm(self, memory_mb: int) -> None:
        """Have an idle child running (started here if none is), so the next render does not
        wait for one to start: a process start is not counted against a render's deadline."""
        with self.lock:
            if any(child.alive and child.memory_mb == memory_mb for child in self.idle):
                return
        self.give_back(RenderChild(memory_mb))

    def give_back(self, child: RenderChild, *, busy: bool = False) -> None:
        """Keep a child for the next render (it is ended if dead, surplus or the pool stopped);
        `busy`: it comes back from a render."""
        with self.lock:
            if busy:
                self.busy -= 1
                self.returned.notify_all()
            if child.alive and not self.stopped and len(self.idle) < MAX_CHILDREN:
                self.idle.append(child)
                return
        child.kill()

    def stop(self, timeout_s: float) -> bool:
        """End every child within `timeout_s`: idle ones at once, busy ones as their render
        ends (each is bounded by its own deadline), a spare once started; False if one was
        still running then."""
        deadline = time.monotonic() + timeout_s
        with self.lock:
            self.stopped = True
            spare = self.spare
        if spare is not None:
            spare.join(max(0.0, deadline - time.monotonic()))
        with self.lock:
            idle, self.idle = self.idle, []
            while self.busy and self.returned.wait(max(0.0, deadline - time.monotonic())):
                pass
            late = self.busy or self.starting
        for child in idle:
            child.kill()
        return not late and all(child.ended(deadline) for child in idle)

    def replace(self, memory_mb: int) -> None:
        try:
            child = RenderChild(memory_mb)
        except RendererUnavailable:
            return  # the next render starts one itself, and reports why it cannot
        finally:
            with self.lock:
                self.starting = False
        self.give_back(child)


def render_isolated(
    source: str,
    variables: dict[str, Any],
    *,
    pool: RenderPool,
    max_chars: int,
    time_s: float,
    memory_mb: int,
    size_bound: str = "output cap",
    time_bound: str = "time limit",
) -> str:
    """triggers.templating.render in a child process of `pool`: ends within `time_s` +
    KILL_GRACE_S and `memory_mb` of address space, whatever the template does. `variables` must
    be JSON. Raises TransformError naming the bound hit, RendererUnavailable when no child could
    run."""
    request = {
        "source": source,
        "variables": variables,
        "max_chars": max_chars,
        "time_s": time_s,
        "size_bound": size_bound,
        "time_bound": time_bound,
    }
    return pool.render(request, time_s + KILL_GRACE_S, memory_mb)


def serve(memory_mb: int) -> None:
    """The child's loop: limit its memory, then answer one JSON line per JSON line."""
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        answer: dict[str, Any]
        try:
            request = json.loads(line)
            text = render(
                request["source"],
                request["variables"],
                max_chars=request["max_chars"],
                time_s=request["time_s"],
                size_bound=request["size_bound"],
                time_bound=request["time_bound"],
            )
            answer = {"text": text}
        except TransformError as exc:
            answer = {"error": str(exc)}
        except MemoryError:
            # Nothing of this process can be trusted after it: answer, then end.
            answer = {
                "error": f"the template needs more than {memory_mb} MB (TRANSFORM_MEMORY_MB)",
                "fatal": True,
            }
        out.write(json.dumps(answer).encode() + b"\n")
        out.flush()
        if answer.get("fatal"):
            return
