"""A real HTTP webhook receiver on 127.0.0.1 that records what arrives and answers by path.

Paths choose the answer: /ok (200), /status/<code>, /retry-after/<code>/<seconds>,
/slow/<seconds> (200 after a pause), /slow-once/<seconds> (only the first call pauses),
/reply (200 with the JSON set in `replies`), /flaky/<n> (500 for the first n calls, then 200),
/redirect/<code> (that status, Location: https://evil.example/), /big/<n> (a body of n bytes).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() on arrival
    method: str = "POST"

    def json(self):
        return json.loads(self.body)


class BurstServer(ThreadingHTTPServer):
    """http.server listens with a backlog of 5; a worker sending a batch opens up to
    SENDER_THREADS connections at once, which a real receiver's server accepts."""

    request_queue_size = 256


class Receiver:
    """The server plus the list of requests it got."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Received] = []
        self.replies: dict[str, object] = {}
        self.calls: dict[str, int] = defaultdict(int)
        self.condition = threading.Condition()
        self.connections: set[socket.socket] = set()  # open keep-alive connections
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def setup(self):
                super().setup()
                with receiver.condition:
                    receiver.connections.add(self.connection)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.handle(self, body)

            # A request transform may choose another method; the path answers the same.
            do_PUT = do_PATCH = do_DELETE = do_GET = do_POST

        # A fixed `port` lets a test bring a receiver "back up" where the old one was.
        self.server = BurstServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/ok") -> str:
        """Absolute URL of `path` on this receiver."""
        return f"http://127.0.0.1:{self.port}{path}"

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path = handler.path
        parts = path.strip("/").split("/")
        with self.condition:
            self.calls[path] += 1
            count = self.calls[path]
        status, headers, reply = 200, {}, b'{"ok": true}'
        # Recorded on arrival, before any pause: tests see a request while it is in flight.
        self.record(Received(path, dict(handler.headers), body, time.time(), handler.command))
        if parts[0] == "status":
            status = int(parts[1])
        elif parts[0] == "retry-after":
            status, headers = int(parts[1]), {"Retry-After": parts[2]}
        elif parts[0] == "slow" or (parts[0] == "slow-once" and count == 1):
            time.sleep(float(parts[1]))
        elif parts[0] == "reply":
            reply = json.dumps(self.replies.get(path, {})).encode()
        elif parts[0] == "flaky" and count <= int(parts[1]):
            status = 500
        elif parts[0] == "redirect":
            status, headers = int(parts[1]), {"Location": "https://evil.example/"}
        elif parts[0] == "big":
            reply = b"x" * int(parts[1])
        try:
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(reply)))
            handler.end_headers()
            handler.wfile.write(reply)
        except OSError:
            pass  # the caller gave up (timeout test)

    def record(self, received: Received) -> None:
        with self.condition:
            self.requests.append(received)
            self.condition.notify_all()

    def on(self, path: str) -> list[Received]:
        """Requests that arrived on `path`."""
        with self.condition:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int = 1, timeout_s: float = 30.0) -> list[Received]:
        """Block until `count` requests arrived on `path`; fail after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self.condition:
            while True:
                got = [r for r in self.requests if r.path == path]
                if len(got) >= count:
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{len(got)} of {count} requests on {path} after {timeout_s} s"
                    )
                self.condition.wait(remaining)

    def close(self) -> None:
        """Stop listening and drop every open connection, as a receiver going down does."""
        self.server.shutdown()
        self.server.server_close()
        with self.condition:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self.connections.clear()
