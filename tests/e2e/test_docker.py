"""docker/: the compose file is valid, and every variable it sets is one the settings read."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import requests
import yaml

from tests.envvars import ROOT, settings_env_vars
from tests.stack import free_port
from tests.waiting import wait_until

DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
APP_SERVICES = ("web", "worker", "beat")
INTERPOLATION_RE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


def compose_program() -> str:
    """Path of Debian's docker-compose; skipped (or failed, in CI) when it is missing."""
    program = shutil.which("docker-compose")
    if program is None:
        if os.environ.get("EVENTING_REQUIRE_SERVICES") == "1":
            pytest.fail("docker-compose is not installed (apt-get install docker-compose)")
        pytest.skip("docker-compose is not installed")
    return program


def compose(*args: str, env_file=ENV_EXAMPLE) -> subprocess.CompletedProcess:
    """Run docker-compose on our file with only the env file's variables (not the caller's)."""
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [compose_program(), "-f", str(COMPOSE), "--env-file", str(env_file), *args],
        cwd=DOCKER,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def env_example() -> dict[str, str]:
    """The variables of .env.example."""
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def command(service: dict) -> str:
    """A service's command as one string (compose allows a string or a list)."""
    value = service["command"]
    return value if isinstance(value, str) else " ".join(value)


@pytest.fixture(scope="module")
def resolved() -> dict:
    """`docker-compose config` output: the file with anchors merged and variables filled."""
    result = compose("config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid():
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_a_required_secret(tmp_path):
    partial = tmp_path / "partial.env"
    partial.write_text(
        "\n".join(f"{k}={v}" for k, v in env_example().items() if k != "SECRET_KEY") + "\n"
    )
    result = compose("config", "-q", env_file=partial)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_services_health_checks_and_volumes(resolved):
    services = resolved["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "beat"}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert {"pgdata", "redisdata", "media", "beat"} <= set(resolved["volumes"])
    assert any("pgdata" in str(v) for v in services["postgres"]["volumes"])
    assert any("beat" in str(v) for v in services["beat"]["volumes"])
    assert "migrate --noinput" in command(services["web"])
    assert "gunicorn config.wsgi" in command(services["web"])
    assert "-P threads" in command(services["worker"])
    assert "celery -A config beat" in command(services["beat"])
    assert services["worker"]["depends_on"]["web"]["condition"] == "service_healthy"
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://eventing:")
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert env["EVENTING_SECRETS"] == env_example()["EVENTING_SECRETS"]


def test_database_capture_can_be_turned_on_from_the_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        ENV_EXAMPLE.read_text().replace("EVENTING_CAPTURE=signals", "EVENTING_CAPTURE=database")
    )
    result = compose("config", env_file=env_file)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in APP_SERVICES:  # web records, worker and beat expand: all must agree
        assert services[name]["environment"]["EVENTING_CAPTURE"] == "database", name
    assert env_example()["EVENTING_CAPTURE"] == "signals"


def test_worker_and_beat_are_restarted_when_they_exit(resolved):
    # A worker can exit on its own (an unrecoverable error): compose is its supervisor.
    for name in ("worker", "beat", "web"):
        assert resolved["services"][name].get("restart") in ("unless-stopped", "always"), name


def test_every_variable_the_app_services_set_is_read_by_the_settings(resolved):
    read = settings_env_vars()
    for name in APP_SERVICES:
        unknown = set(resolved["services"][name]["environment"]) - read
        assert not unknown, f"{name} sets {sorted(unknown)}, which config/settings.py never reads"


def test_env_example_holds_exactly_what_compose_uses():
    used = set(INTERPOLATION_RE.findall(COMPOSE.read_text()))
    documented = set(env_example())
    assert used - {"HOSTNAME"} <= documented, f"undocumented: {sorted(used - documented)}"
    stray = documented - used - settings_env_vars()
    assert not stray, f".env.example sets {sorted(stray)}, which nothing reads"


def test_dockerfile_is_multi_stage_non_root_gunicorn():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", dockerfile, re.MULTILINE)
    assert len(stages) >= 2
    assert all("slim" in image for image, _ in stages)
    assert "COPY --from=build" in dockerfile
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0")
    assert re.search(r'^CMD \["gunicorn"', dockerfile, re.MULTILINE)
    assert re.search(r"^gunicorn==", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    for path in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.MULTILINE):
        assert (ROOT / path).exists(), f"Dockerfile copies {path}, which does not exist"


def dockerfile_cmd() -> list[str]:
    """The image's CMD, as JSON (continuation lines joined)."""
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    return json.loads(re.search(r"^CMD (\[.*\])$", text, re.MULTILINE).group(1))


@pytest.mark.slow
def test_the_image_commands_serve_mission_control_and_its_static_files(tmp_path):
    """What the image runs — collectstatic at build, migrate, then its gunicorn CMD — outside
    Docker (no engine here): pages and static files are served with DEBUG off."""
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_", "EVENTING_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        EVENTING_VAR_DIR=str(tmp_path / "var"),
        STATIC_ROOT=str(tmp_path / "static"),
        SECRET_KEY="image-test-key",
        # compose requires it; the repository's development secret is refused with DEBUG off
        EVENTING_SECRETS="image-test-signing-secret-0123456789abcdef0123",
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        PYTHONUNBUFFERED="1",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),  # as the image sets it
    )
    (tmp_path / "metrics").mkdir()
    for args in (["collectstatic", "--noinput", "-v", "0"], ["migrate", "--noinput", "-v", "0"]):
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=120
        )
    cmd = dockerfile_cmd()
    assert cmd[0] == "gunicorn"
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        *[f"127.0.0.1:{port}" if arg == "0.0.0.0:8000" else arg for arg in cmd[1:]],
    ]
    log = (tmp_path / "gunicorn.log").open("wb")
    web = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:

        def serving():
            assert web.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                return requests.get(f"{base}/mission-control/login/", timeout=10)
            except (requests.ConnectionError, requests.Timeout):
                return None  # still starting (slow on a busy machine)

        page = wait_until(serving, timeout_s=60, message="gunicorn")
        assert page.status_code == 200
        assert "Mission Control" in page.text
        css = re.search(r'href="(/static/admin/css/[^"]+\.css)"', page.text).group(1)
        static = requests.get(base + css, timeout=5)
        assert static.status_code == 200
        assert static.headers["Content-Type"].startswith("text/css")
        health = requests.get(f"{base}/healthz?checks=database,broker", timeout=5)
        assert health.status_code == 200, health.text
        metrics = requests.get(f"{base}/metrics", timeout=5)
        assert metrics.status_code == 200
        assert 'eventing_backlog{status="staged"} 0.0' in metrics.text
    finally:
        web.terminate()
        web.wait(20)
        log.close()
