"""docker/: the compose file is valid, and every variable it sets is one the settings read."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.envvars import ROOT, settings_env_vars

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
