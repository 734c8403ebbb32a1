"""docs/: the configuration reference matches eventing/conf.py and config/settings.py, every
page the index links to exists (or is written by its owner), and the blocks of README.md,
docs/quickstart.md, docs/integration.md and docs/testing-your-project.md run as written."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eventing.conf import DEFAULTS
from tests.docblocks import ACTIONS, PAGES, blocks, every_block
from tests.envvars import ROOT, settings_env_vars

DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"

# One xdist worker runs the whole file: the standalone checkout (a module fixture) is made once.
pytestmark = pytest.mark.xdist_group("docs")


def config_docs():
    """scripts/config_docs.py as a module."""
    spec = importlib.util.spec_from_file_location(
        "config_docs", ROOT / "scripts" / "config_docs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def env_table_names() -> set[str]:
    """Variables listed in the environment table of configuration.md."""
    text = CONFIGURATION.read_text()
    section = text[text.index("## Environment variables") :]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, re.MULTILINE))


def test_settings_table_is_generated_from_conf():
    module = config_docs()
    doc = CONFIGURATION.read_text()
    assert module.current_table(doc) == module.render_table(), (
        "docs/configuration.md is out of date: run python scripts/config_docs.py"
    )


def test_every_eventing_key_is_documented_with_its_default():
    rows = {key: (default, meaning) for key, default, meaning in config_docs().settings_rows()}
    assert set(rows) == set(DEFAULTS)
    for key, (default, meaning) in rows.items():
        assert meaning, f"EVENTING[{key!r}] has no comment in eventing/conf.py"
        assert eval(default, {}) == DEFAULTS[key], key  # noqa: S307 - our own source text
    for key in DEFAULTS:
        assert f"| `{key}` |" in CONFIGURATION.read_text()


def test_the_generator_reads_comments_and_expressions():
    source = """DEFAULTS = {
    # Shown first.
    # Second line.
    "A": 1024 * 1024,
    "B": {"x": 1},  # trailing comments are not descriptions
}"""
    rows = config_docs().settings_rows(source)
    assert rows == [("A", "1024 * 1024", "Shown first. Second line."), ("B", '{"x": 1}', "")]


def test_environment_table_matches_what_settings_read():
    documented, read = env_table_names(), settings_env_vars()
    assert read - documented == set(), f"undocumented: {sorted(read - documented)}"
    assert documented - read == set(), f"documented but never read: {sorted(documented - read)}"


@pytest.mark.parametrize(
    "page",
    [
        "quickstart.md",
        "integration.md",
        "configuration.md",
        "receiving-plain-python.md",
        "operations.md",
        "migrating.md",
        "testing-your-project.md",
    ],
)
def test_pages_exist_and_are_linked_from_the_index(page):
    assert (DOCS / page).is_file()
    assert f"]({page})" in (DOCS / "index.md").read_text()


def test_index_links_every_page_of_the_docs():
    index = (DOCS / "index.md").read_text()
    linked = set(re.findall(r"\]\(([a-z-]+\.md)", index))
    present = {path.name for path in DOCS.glob("*.md")} - {"index.md"}
    assert present <= linked, f"not linked from docs/index.md: {sorted(present - linked)}"
    others = {
        "api.md",
        "receiving.md",
        "storage.md",
        "guarantees.md",
        "benchmarks.md",
        "mission-control.md",
    }
    assert others <= linked


def test_relative_links_between_pages_resolve():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\((?!https?:|#)([^)#\s]+)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def receiver_example() -> str:
    """The complete receiver of receiving-plain-python.md, as written there."""
    text = (DOCS / "receiving-plain-python.md").read_text()
    section = text[text.index("## A complete receiver") :]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


@pytest.mark.django_db
def test_plain_python_receiver_example_verifies_real_deliveries(tmp_path):
    import requests

    from eventing.conf import settings
    from eventing.testing import signed_request
    from tests.stack import free_port
    from tests.waiting import wait_until

    script = tmp_path / "receiver.py"
    script.write_text(receiver_example())
    request = signed_request({"order": 7}, type="order_placed", trigger="plain_python")
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PORT": str(port),
        "WEBHOOK_SECRET": request.signing_secret,
        "EVENTING_SECRETS": ",".join(["an-old-secret-0123456789abcdef0123", *settings.SECRETS]),
    }
    log = tmp_path / "out.log"
    proc = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/"
    try:

        def up():
            try:
                return requests.get(url, timeout=5) is not None
            except (requests.ConnectionError, requests.Timeout):
                return proc.poll() is not None

        wait_until(up, message="the example receiver")
        assert proc.poll() is None, log.read_text()

        ok = requests.post(url, data=request.body, headers=request.headers, timeout=5)
        assert ok.status_code == 200, ok.text
        wait_until(lambda: f"order_placed {request.event_id}" in log.read_text())

        def spoiled(tamper: str):
            bad = signed_request({"order": 7}, signing_secret=request.signing_secret, tamper=tamper)
            return requests.post(url, data=bad.body, headers=bad.headers, timeout=5)

        for tamper in ("body", "signature", "expired"):
            assert spoiled(tamper).status_code == 401, tamper
        forged = spoiled("token")
        assert forged.status_code == 401
        assert "no accepted secret" in forged.json()["error"]
    finally:
        proc.terminate()
        proc.wait(10)


# Every shell and Python block of README.md, docs/quickstart.md and docs/integration.md runs:
# the standalone pages' in this checkout on a fresh var/ (as after `make run`), the integration
# page's in a fresh `django-admin startproject` with the checkout on sys.path. Markers
# (tests/docblocks.py) name the few that need a server or cannot run here, with the reason.


def test_every_block_is_run_or_marked_with_a_reason():
    found = every_block()
    assert {block.page for block in found} == set(PAGES)
    for block in found:
        assert block.action in ("", *ACTIONS), f"{block}: unknown docs-test marker"
        if block.action:
            assert block.arg, f"{block}: a docs-test marker needs its reason or path"
        if block.action in ("append", "write"):
            assert block.lang == "python", f"{block}: only Python blocks go into files"
    skipped = [b for b in found if b.action in ("needs-server", "skip")]
    assert len(skipped) < len(found) / 2, "most blocks must run"


def docs_env(**extra: str) -> dict[str, str]:
    """This environment without what points Django, Celery or Eventing at the test settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CELERY_", "EVENTING_", "DATABASE_URL", "PYTHON"))
    }
    # `python`, `django-admin` and `celery` are this virtualenv's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run_block(block, *, cwd: Path, env: dict[str, str]) -> str:
    """Run an unmarked block as a reader would; fail naming the block with its output."""
    if block.lang == "bash":
        # `.venv/bin/python` is the interpreter running the tests (CI's .venv, or another).
        code = block.code.replace(".venv/bin/python", sys.executable)
        cmd = ["bash", "-euo", "pipefail", "-c", code]
    else:
        cmd = [sys.executable, "manage.py", "shell", "-c", block.code]
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{block} failed:\n{block.code}\n{result.stdout}{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def standalone_env(tmp_path_factory) -> dict[str, str]:
    """The standalone project as `make run` leaves it (secrets, migrated, admin, `default`
    event type), on a var/ of its own."""
    var = tmp_path_factory.mktemp("var")
    env = docs_env(
        EVENTING_VAR_DIR=str(var),
        DJANGO_SETTINGS_MODULE="config.settings",
        EVENTING_ALLOWED_NETWORKS="127.0.0.0/8",
    )
    spec = importlib.util.spec_from_file_location("make_run_script", ROOT / "scripts" / "run.py")
    make_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_run)
    make_run.ensure_local_secrets(var)
    make_run.manage("migrate", "--no-input", "-v", "0", env=env)
    make_run.ensure_development_data("docs-test-password", env)
    return env


@pytest.mark.parametrize("page", ["README.md", "docs/quickstart.md"])
def test_standalone_pages_blocks_run(page, standalone_env):
    ran = [b for b in blocks(page) if not b.action]
    assert ran, f"{page} has no block that runs"
    for block in ran:
        output = run_block(block, cwd=ROOT, env=standalone_env)
        assert "Traceback" not in output, f"{block}:\n{output}"
        assert "WARNING" not in output, f"{block} warns:\n{output}"


def test_integration_page_works_in_a_fresh_startproject(tmp_path):
    env = docs_env(
        PYTHONPATH=str(ROOT),
        EVENTING_SECRET="docs-test-" + "x" * 40,
        EVENTING_CLIENT_SECRET="docs-test-client-" + "y" * 40,
    )
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "yourproject"],
        cwd=tmp_path,
        env=env,
        check=True,
    )
    project = tmp_path / "yourproject"
    for block in blocks("docs/integration.md"):
        if block.action == "append":
            with (project / block.arg).open("a") as target:
                target.write("\n" + block.code)
        elif block.action == "write":
            (project / block.arg).write_text(block.code)
        elif not block.action:
            run_block(block, cwd=project, env=env)

    check = run_block_code(
        "from django.core.management import call_command; call_command('check');"
        "from yourproject.celery import app; app.loader.import_default_modules();"
        "from eventing.models import EventLog;"
        "print(sorted(t for t in app.tasks if t.startswith('eventing.')));"
        "print(EventLog.objects.filter(trigger_name='new_users', type='DB_INSERT').count())",
        cwd=project,
        env=env,
    )
    tasks, recorded = check.strip().splitlines()[-2:]
    assert tasks == str(
        [
            "eventing.cleanup",
            "eventing.cron",
            "eventing.deliver",
            "eventing.deliver_batch",
            "eventing.partitions",
            "eventing.sweep",
        ]
    )
    assert recorded == "1"  # step 8's User.objects.create recorded the event

    # The page names every table its migrate created (those of no model of Django's or DRF's).
    created = json.loads(run_block_code(CREATED_TABLES, cwd=project, env=env).splitlines()[-1])
    migrate_text = (ROOT / "docs" / "integration.md").read_text().split("## 6. Migrate")[1]
    listed = set(re.findall(r"`([a-z_]+)`", migrate_text.split("## 7.")[0]))
    assert set(created) <= listed, f"not listed in step 6: {sorted(set(created) - listed)}"

    # API tokens verify: the client secret is set, apart from the signing secret.
    client_check = run_block_code(
        "from eventing.conf import get_settings; s = get_settings();"
        "print(bool(s.CLIENT_SECRETS) and not set(s.CLIENT_SECRETS) & set(s.SECRETS))",
        cwd=project,
        env=env,
    )
    assert client_check.strip().splitlines()[-1] == "True"

    # Eventing adds no warning of its own API schema to the host's deploy checks.
    deploy = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "drf_spectacular" not in deploy.stdout + deploy.stderr, deploy.stderr

    # The broker block gives each kind of URL its own transport, and only its own.
    for url, transport in BROKER_TRANSPORTS.items():
        chosen = run_block_code(
            "from yourproject.celery import app; t = type(app.connection().transport);"
            "print(t.__module__ + ':' + t.__name__)",
            cwd=project,
            env={**env, "CELERY_BROKER_URL": url},
        )
        assert chosen.strip().splitlines()[-1] == transport, url


CREATED_TABLES = """
import json
from django.apps import apps
from django.db import connection
ours = ("triggers", "eventing", "mission_control")
others = {
    model._meta.db_table
    for config in apps.get_app_configs() if config.label not in ours
    for model in config.get_models(include_auto_created=True)
}
others |= {"django_migrations", "sqlite_sequence"}
print(json.dumps(sorted(set(connection.introspection.table_names()) - others)))
"""

BROKER_TRANSPORTS = {
    "redis://localhost:6379/0": "eventing.dispatch.broker:RedisTransport",
    "amqp://guest:guest@localhost:5672//": "kombu.transport.pyamqp:Transport",
    "filesystem://": "eventing.dispatch.broker:FilesystemTransport",
}


def run_block_code(code: str, *, cwd: Path, env: dict[str, str]) -> str:
    """Run Python in the project's `manage.py shell`; its output."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# docs/testing-your-project.md: its example files, written into a copy of tests/hostproject (a
# plain Django project with Eventing), pass under `manage.py test` and under pytest-django.
TESTING_PAGE = "docs/testing-your-project.md"


def ini_block(page: str) -> str:
    """The page's one ```ini block (the pytest.ini it shows)."""
    text = (ROOT / page).read_text()
    return re.search(r"```ini\n(.*?)```", text, re.DOTALL).group(1)


@pytest.mark.slow
def test_testing_page_example_passes_in_a_host_project(tmp_path):
    host = tmp_path / "host"
    shutil.copytree(
        ROOT / "tests" / "hostproject", host, ignore=shutil.ignore_patterns("data", "__pycache__")
    )
    written = [block for block in blocks(TESTING_PAGE) if block.action == "write"]
    assert {block.arg for block in written} >= {"library/tests.py", "library/test_with_pytest.py"}
    for block in written:
        (host / block.arg).write_text(block.code)
    (host / "pytest.ini").write_text(ini_block(TESTING_PAGE))
    env = docs_env(PYTHONPATH=str(ROOT), HOST_DATA_DIR=str(tmp_path / "data"))

    def run(*cmd: str) -> str:
        result = subprocess.run(
            [sys.executable, *cmd], cwd=host, env=env, capture_output=True, text=True, timeout=300
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{output}"
        return output

    django_run = run("manage.py", "test", "library", "-v", "2")
    assert re.search(r"^Ran 4 tests", django_run, re.MULTILINE), django_run
    pytest_run = run("-m", "pytest", "-q", "-p", "no:cacheprovider")
    # The four TestCase tests again, and the pytest module's three plus four tamperings.
    assert re.search(r"^11 passed", pytest_run, re.MULTILINE), pytest_run
