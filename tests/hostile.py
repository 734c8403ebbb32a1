"""Raw TCP servers on 127.0.0.1 that misbehave the way real receivers sometimes do."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable


class RawServer:
    """Accepts connections and hands each socket to `behaviour` in its own thread."""

    def __init__(self, behaviour: Callable[[socket.socket, RawServer], None]) -> None:
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        # A worker sends a batch over up to SENDER_THREADS connections at once.
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.bytes_sent = 0
        self.requests: list[bytes] = []  # every complete request head + body read
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def url(self, path: str = "/", scheme: str = "http") -> str:
        """Absolute URL of `path` on this server."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.run, args=(conn,), daemon=True).start()

    def run(self, conn: socket.socket) -> None:
        try:
            self.behaviour(conn, self)
        except OSError:
            pass  # the client hung up on us: that is the point of most tests
        finally:
            conn.close()

    def send(self, conn: socket.socket, data: bytes) -> None:
        """Send and count bytes (tests assert how much was really pulled)."""
        conn.sendall(data)
        self.bytes_sent += len(data)

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


def read_request(conn: socket.socket, timeout_s: float = 5.0) -> bytes:
    """Read a request's head and its Content-Length body."""
    conn.settimeout(timeout_s)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def dribble(data: bytes, interval_s: float) -> Callable[[socket.socket, RawServer], None]:
    """Answer `data` one byte every `interval_s`, then keep the connection open."""

    def behaviour(conn: socket.socket, server: RawServer) -> None:
        read_request(conn)
        for byte in data:
            if server.closed.is_set():
                return
            server.send(conn, bytes([byte]))
            time.sleep(interval_s)
        server.closed.wait(30)

    return behaviour


def huge(total: int, chunk: int = 64 * 1024) -> Callable[[socket.socket, RawServer], None]:
    """A 200 response announcing `total` bytes and sending them as fast as it can."""

    def behaviour(conn: socket.socket, server: RawServer) -> None:
        read_request(conn)
        server.send(
            conn,
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {total}\r\n\r\n".encode(),
        )
        block = b" " * chunk
        sent = 0
        while sent < total:
            server.send(conn, block)
            sent += chunk

    return behaviour


def reply(raw: bytes) -> Callable[[socket.socket, RawServer], None]:
    """Answer `raw` bytes verbatim, then close."""

    def behaviour(conn: socket.socket, server: RawServer) -> None:
        request = read_request(conn)
        if request:
            server.requests.append(request)
            server.send(conn, raw)

    return behaviour


def answer_by(choose: Callable[[bytes], bytes]) -> Callable[[socket.socket, RawServer], None]:
    """Answer the raw bytes `choose(request body)` returns, then close: one reply per event."""

    def behaviour(conn: socket.socket, server: RawServer) -> None:
        request = read_request(conn)
        if request:
            server.requests.append(request)
            server.send(conn, choose(request.partition(b"\r\n\r\n")[2]))

    return behaviour


def nested_reply(depth: int) -> bytes:
    """A 200 whose JSON asks for a follow-up `event` nested `depth` lists deep."""
    return http_response(200, b'{"event": ' + b"[" * depth + b"]" * depth + b"}")


def reset(conn: socket.socket, server: RawServer) -> None:
    """Read the request, then reset the connection (RST, not FIN)."""
    read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def http_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response."""
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
