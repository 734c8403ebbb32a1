"""The urllib3 pools webhooks go through: SSRF check before connecting, hard deadline.

The host is resolved here and every address is judged before a socket connects to it, so a
blocked address never sees a SYN: an open and a closed port behind it fail alike (no port-scan
oracle). The connection goes to the very address judged (DNS rebinding cannot swap it), and the
peer is checked once more after connecting, before any byte is sent.
The deadline is a watchdog that shuts the socket down when the trigger's timeout is over, so a
receiver dribbling its status line, headers or body one byte at a time cannot hold a worker.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import socket
import sys
import threading
import time
from typing import Any

import certifi
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util.connection import allowed_gai_family
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from eventing.runtime import PerProcess
from eventing.webhooks.scrubbing import redact
from eventing.webhooks.ssrf import BlockedAddressError, blocked_reason, check_peer

_current = threading.local()
# Hosts a sending thread keeps a warm connection to (least recently used ones are closed).
POOLS_PER_THREAD = 16
# urllib3 logs URLs (query strings included) and, on header parse errors, the URL again.
URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.connection", "urllib3.response")


class ScrubSecrets(logging.Filter):
    """Replaces the running call's secrets in urllib3's log records by [redacted]."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = getattr(_current, "secrets", ())
        if secrets:
            record.msg, record.args = redact(record.getMessage(), secrets), None
        return True


class LogScrubbing:
    """ScrubSecrets on urllib3's loggers, from the process's first call with secrets until
    `runtime.stop()`: nothing is added at import, and what is added is taken off again."""

    def __init__(self) -> None:
        self.filter = ScrubSecrets()
        for name in URLLIB3_LOGGERS:
            logging.getLogger(name).addFilter(self.filter)

    def remove(self, timeout_s: float = 0.0) -> bool:
        """Take the filter off urllib3's loggers."""
        for name in URLLIB3_LOGGERS:
            logging.getLogger(name).removeFilter(self.filter)
        return True


log_scrubbing = PerProcess(LogScrubbing, stop=LogScrubbing.remove)


@contextlib.contextmanager
def scrubbed_logs(secrets: tuple[str, ...]):
    """While the block runs, urllib3 log lines of this thread never show `secrets`."""
    if secrets:
        log_scrubbing()
    _current.secrets = secrets
    try:
        yield
    finally:
        _current.secrets = ()


class Watchdog:
    """Shuts down the sockets of this thread's webhook call when its deadline passes."""

    def __init__(self, timeout_s: float) -> None:
        self.deadline = time.monotonic() + timeout_s
        self.fired = False
        self.done = False
        self._connections: list[HTTPConnection] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Watchdog:
        _current.watchdog = self
        deadlines().add(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self.done = True
            # It stays on the deadline heap until its time: hold no connection meanwhile.
            self._connections.clear()
        _current.watchdog = None

    def watch(self, conn: HTTPConnection) -> None:
        """Cut `conn` at the deadline (at once if the deadline already passed)."""
        with self._lock:
            self._connections.append(conn)
            if self.fired:
                shutdown(conn)

    def fire(self) -> None:
        """The deadline: every watched socket is shut down, which ends any blocked read."""
        with self._lock:
            if self.done:
                return
            self.fired = True
            for conn in self._connections:
                shutdown(conn)


class Deadlines:
    """One thread per process that fires every call's watchdog when its deadline passes.

    A timer thread per call cost a thread start per webhook; here a call only pushes its
    deadline on a heap. Finished calls stay on the heap until their time and are skipped then.
    """

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Watchdog]] = []
        self.counter = itertools.count()
        self.changed = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self.run, name="eventing-deadlines", daemon=True)
        self.thread.start()

    def add(self, watchdog: Watchdog) -> None:
        with self.changed:
            heapq.heappush(self.heap, (watchdog.deadline, next(self.counter), watchdog))
            if self.heap[0][2] is watchdog:
                self.changed.notify()

    def run(self) -> None:
        while True:
            with self.changed:
                while not self.stopping and (not self.heap or self.heap[0][0] > time.monotonic()):
                    wait = self.heap[0][0] - time.monotonic() if self.heap else None
                    self.changed.wait(wait)
                if self.stopping:
                    return
                _, _, due = heapq.heappop(self.heap)
            due.fire()

    def stop(self, timeout_s: float) -> bool:
        """End the thread (a call still running keeps its socket timeouts); False if it lingers."""
        with self.changed:
            self.stopping = True
            self.changed.notify()
        self.thread.join(timeout_s)
        return not self.thread.is_alive()


# This process's deadline thread (eventing.runtime stops it at exit).
deadlines = PerProcess(Deadlines, stop=Deadlines.stop)


def shutdown(conn: HTTPConnection) -> None:
    """Shut a connection's socket down in both directions; a blocked recv() returns at once."""
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def watch(conn: HTTPConnection) -> None:
    """Put `conn` under the running call's watchdog, if any."""
    watchdog = getattr(_current, "watchdog", None)
    if watchdog is not None:
        watchdog.watch(conn)


def create_connection(
    host: str,
    port: int,
    timeout: Any = _DEFAULT_TIMEOUT,
    source_address: tuple[str, int] | None = None,
    socket_options: Any = None,
) -> socket.socket:
    """urllib3's create_connection, judging each resolved address before connecting to it.

    Blocked addresses are skipped without a connect(); when every address is blocked the first
    one's BlockedAddressError is raised, the same text whether its port is open or closed.
    """
    host = host.strip("[]")
    try:
        host.encode("idna")
    except UnicodeError:
        raise LocationParseError(f"'{host}', label empty or too long") from None
    refusal: BlockedAddressError | None = None
    error: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(
        host, port, allowed_gai_family(), socket.SOCK_STREAM
    ):
        reason = blocked_reason(address[0])
        if reason:
            refusal = refusal or BlockedAddressError(address[0], reason)
            continue
        sock = None
        try:
            sock = socket.socket(family, kind, proto)
            for option in socket_options or ():
                sock.setsockopt(*option)
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(address)
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    if error is not None:
        raise error
    if refusal is not None:
        raise refusal
    raise OSError("getaddrinfo returns an empty list")


class GuardedHTTPConnection(HTTPConnection):
    """An HTTP connection that refuses blocked addresses and obeys the call's deadline."""

    def _new_conn(self) -> socket.socket:
        # urllib3's own _new_conn, with the guarded create_connection; BlockedAddressError is
        # no OSError, so it passes through unwrapped.
        try:
            sock = create_connection(
                self._dns_host,
                self.port,
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        sys.audit("http.client.connect", self, self.host, self.port)
        try:
            # The address connected to was judged already; this is the belt to those braces.
            check_peer(sock)
        except BaseException:
            sock.close()
            raise
        return sock

    def connect(self) -> None:
        watch(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        # Reused pooled connections skip connect(): watch them here too.
        watch(self)
        super().request(*args, **kwargs)


class GuardedHTTPSConnection(GuardedHTTPConnection, HTTPSConnection):
    """The HTTPS variant: the peer is checked before the TLS handshake starts."""


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    """Pool of guarded HTTP connections."""

    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    """Pool of guarded HTTPS connections."""

    ConnectionCls = GuardedHTTPSConnection


def pool_manager() -> PoolManager:
    """A urllib3 pool manager whose pools hand out guarded connections only.

    Certificates are checked against certifi's bundle (what requests would use), redirects
    are never followed and nothing is retried: a failed call is a failed attempt.
    """
    manager = PoolManager(
        num_pools=POOLS_PER_THREAD,
        maxsize=1,
        cert_reqs="CERT_REQUIRED",
        ca_certs=certifi.where(),
        retries=False,
    )
    manager.pool_classes_by_scheme = {
        "http": GuardedHTTPConnectionPool,
        "https": GuardedHTTPSConnectionPool,
    }
    return manager
