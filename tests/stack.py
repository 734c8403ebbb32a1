"""Run a command against throwaway PostgreSQL and Redis servers (or the embedded stack).

    python -m tests.stack postgres -- pytest …   # PostgreSQL + Redis, started here
    python -m tests.stack rabbitmq -- pytest …   # PostgreSQL + RabbitMQ, started here
    python -m tests.stack sqlite -- pytest …     # SQLite file + kombu filesystem broker

Servers listen on 127.0.0.1 on free ports, live in a temporary folder and are stopped when the
command ends. With EVENTING_REQUIRE_SERVICES=1 a missing program is an error, else a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import amqp

PG_BIN_DIRS = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin"]
# Debian's /usr/sbin/rabbitmq-* wrappers switch to the rabbitmq user and its /var/lib home;
# the programs behind them run as any user with the folders we give them.
RABBITMQ_BIN_DIR = "/usr/lib/rabbitmq/bin"
RABBITMQ_START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 30.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"Nothing listens on port {port} after {timeout_s} s")


def find_pg_program(name: str) -> str | None:
    """Path of a PostgreSQL server program, or None."""
    for folder in PG_BIN_DIRS:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the postgres user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder, tuned for tests (no fsync)."""

    def __init__(self, root: Path) -> None:
        self.root = root / "pg"
        self.port = free_port()
        self.initdb = find_pg_program("initdb")
        self.pg_ctl = find_pg_program("pg_ctl")

    @property
    def available(self) -> bool:
        return bool(self.initdb and self.pg_ctl)

    def start(self) -> str:
        self.root.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "data"
        subprocess.run(
            as_postgres_user(
                [
                    self.initdb,
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300"
        )
        subprocess.run(
            as_postgres_user(
                [
                    self.pg_ctl,
                    "-D",
                    str(data),
                    "-l",
                    str(self.root / "log"),
                    "-o",
                    options,
                    "-w",
                    "start",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        # The database `make run`-style commands and benchmarks use; tests create their own.
        return self.create_database("eventing")

    def create_database(self, name: str) -> str:
        """Create database `name` on this server; its URL."""
        subprocess.run(
            [
                find_pg_program("createdb") or "createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                name,
            ],
            check=True,
        )
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run(
            as_postgres_user(
                [self.pg_ctl, "-D", str(self.root / "data"), "-m", "immediate", "stop"]
            ),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def redis_command(port: int) -> list[str]:
    """The command line of a throwaway Redis on `port` (no persistence: it restarts empty)."""
    return [
        shutil.which("redis-server") or "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        # Two per pytest-xdist worker (tests/support/isolation.py) and the serial run's two.
        "--databases",
        "64",
    ]


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def shutdown_redis(port: int, timeout_s: float = 10.0) -> None:
    """Stop whichever Redis listens on `port` (SHUTDOWN NOSAVE: its data is gone)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"SHUTDOWN NOSAVE\r\n")
            sock.recv(64)
    except OSError:
        pass
    deadline = time.monotonic() + timeout_s
    while port_open(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Redis on port {port} did not stop")
        time.sleep(0.05)


# Fault tests stop and start the servers of the run they are in, found through these variables.
def stop_redis() -> None:
    """Stop the run's Redis, losing every queued message."""
    shutdown_redis(int(os.environ["EVENTING_REDIS_PORT"]))


def start_redis() -> subprocess.Popen:
    """Start an empty Redis where the run's Redis was (stopped at the end of the run)."""
    port = int(os.environ["EVENTING_REDIS_PORT"])
    proc = subprocess.Popen(redis_command(port), stdout=subprocess.DEVNULL)
    wait_for_port(port)
    return proc


def restart_postgres() -> None:
    """Restart the run's PostgreSQL (fast mode: every session is cut)."""
    root = Path(os.environ["EVENTING_PG_DIR"])
    subprocess.run(
        as_postgres_user(
            [
                find_pg_program("pg_ctl"),
                "-D",
                str(root / "data"),
                "-l",
                str(root / "log"),
                "-m",
                "fast",
                "-w",
                "restart",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(int(os.environ["EVENTING_PG_PORT"]))


class RedisServer:
    """A Redis server without persistence."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.program = shutil.which("redis-server")
        self.proc: subprocess.Popen | None = None

    @property
    def available(self) -> bool:
        return bool(self.program)

    def start(self) -> str:
        self.proc = subprocess.Popen(redis_command(self.port), stdout=subprocess.DEVNULL)
        wait_for_port(self.port)
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
        # A fault test may have started another Redis on this port: stop that one too.
        shutdown_redis(self.port)


def find_rabbitmq_program(name: str) -> str | None:
    """Path of a RabbitMQ program (rabbitmq-server, rabbitmqctl), or None."""
    candidate = Path(RABBITMQ_BIN_DIR) / name
    return str(candidate) if candidate.exists() else shutil.which(name)


def amqp_ready(port: int) -> bool:
    """Whether the broker on `port` completes an AMQP handshake as guest (it may listen sooner)."""
    try:
        with amqp.Connection(f"127.0.0.1:{port}", connect_timeout=2) as connection:
            connection.connect()
            return True
    except (OSError, amqp.exceptions.AMQPError):
        return False


class RabbitMQServer:
    """A throwaway RabbitMQ node: its own name, ports, epmd, cookie and folders under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root / "rabbitmq"
        self.port = free_port()
        self.dist_port = free_port()
        # Its own epmd, so stopping it never touches another node's name registry.
        self.epmd_port = free_port()
        self.program = find_rabbitmq_program("rabbitmq-server")
        self.proc: subprocess.Popen | None = None

    @property
    def available(self) -> bool:
        return bool(self.program and find_rabbitmq_program("rabbitmqctl"))

    def environment(self) -> dict[str, str]:
        """The variables that keep this node out of /etc/rabbitmq and /var/lib/rabbitmq."""
        return {
            **os.environ,
            "HOME": str(self.root / "home"),
            "RABBITMQ_NODENAME": f"eventing-{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_PID_FILE": str(self.root / "pid"),
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
        }

    def start(self) -> str:
        home = self.root / "home"
        home.mkdir(parents=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(os.urandom(16).hex())
        cookie.chmod(0o400)
        (self.root / "enabled_plugins").write_text("[].\n")
        log = (self.root / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [self.program], env=self.environment(), stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + RABBITMQ_START_TIMEOUT_S
        while not amqp_ready(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.root / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"RabbitMQ did not start on port {self.port}:\n{tail}")
            time.sleep(0.2)
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            subprocess.run(
                [find_rabbitmq_program("rabbitmqctl"), "-q", "stop"],
                env=self.environment(),
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
            )
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        subprocess.run(
            [shutil.which("epmd") or "epmd", "-port", str(self.epmd_port), "-kill"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    kind, command = argv[0], argv[2:]
    env = dict(os.environ)
    root = Path(tempfile.mkdtemp(prefix="eventing-stack-"))
    os.chmod(root, 0o755)
    servers = []
    try:
        if kind == "postgres":
            pg, redis = PostgresServer(root), RedisServer(root)
            if not (pg.available and redis.available):
                missing = "PostgreSQL" if not pg.available else "redis-server"
                if env.get("EVENTING_REQUIRE_SERVICES") == "1":
                    print(
                        f"error: {missing} is not installed and EVENTING_REQUIRE_SERVICES=1",
                        file=sys.stderr,
                    )
                    return 1
                print(
                    f"skip: {missing} is not installed; PostgreSQL/Redis run skipped",
                    file=sys.stderr,
                )
                return 0
            env["DATABASE_URL"] = pg.start()
            servers.append(pg)
            # A second database on the same server: the `events` alias of tests/settings.py,
            # for the tests of a separate EVENTING["DATABASE"].
            env["EVENTING_TEST_EVENTS_DATABASE_URL"] = pg.create_database("eventing_events")
            env["CELERY_BROKER_URL"] = redis.start()
            servers.append(redis)
            env["EVENTING_STACK"] = "postgres"
            env["EVENTING_REDIS_PORT"] = str(redis.port)
            env["EVENTING_PG_DIR"] = str(pg.root)
            env["EVENTING_PG_PORT"] = str(pg.port)
        elif kind == "rabbitmq":
            pg, rabbit = PostgresServer(root), RabbitMQServer(root)
            if not (pg.available and rabbit.available):
                missing = "PostgreSQL" if not pg.available else "rabbitmq-server"
                if env.get("EVENTING_REQUIRE_SERVICES") == "1":
                    print(
                        f"error: {missing} is not installed and EVENTING_REQUIRE_SERVICES=1",
                        file=sys.stderr,
                    )
                    return 1
                print(
                    f"skip: {missing} is not installed; PostgreSQL/RabbitMQ run skipped",
                    file=sys.stderr,
                )
                return 0
            env["DATABASE_URL"] = pg.start()
            servers.append(pg)
            env["EVENTING_TEST_EVENTS_DATABASE_URL"] = pg.create_database("eventing_events")
            servers.append(rabbit)  # stopped even if it fails half-way through starting
            env["CELERY_BROKER_URL"] = rabbit.start()
            env["EVENTING_STACK"] = "rabbitmq"
            env["EVENTING_PG_DIR"] = str(pg.root)
            env["EVENTING_PG_PORT"] = str(pg.port)
        elif kind == "sqlite":
            env.pop("DATABASE_URL", None)
            env.pop("CELERY_BROKER_URL", None)
            env["EVENTING_STACK"] = "sqlite"
        else:
            print(f"unknown stack {kind!r}: use postgres, rabbitmq or sqlite", file=sys.stderr)
            return 2
        env["EVENTING_VAR_DIR"] = str(root / "var")
        return subprocess.call(command, env=env)
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
