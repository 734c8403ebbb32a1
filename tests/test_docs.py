"""docs/: the configuration reference matches eventing/conf.py and config/settings.py, and every
page the index links to exists (or is written by its owner)."""

from __future__ import annotations

import importlib.util
import re

import pytest

from eventing.conf import DEFAULTS
from tests.envvars import ROOT, settings_env_vars

DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"


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
    import subprocess
    import sys

    import jwt
    import requests
    from django.utils import timezone

    from eventing.conf import settings
    from eventing.models import EventLog
    from eventing.webhooks.request import build_request
    from tests.factories import TriggerFactory
    from tests.stack import free_port
    from tests.waiting import wait_until

    script = tmp_path / "receiver.py"
    script.write_text(receiver_example())
    trigger = TriggerFactory.build(name="plain_python")
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PORT": str(port),
        "WEBHOOK_SECRET": trigger.signing_secret,
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
        event = EventLog(
            type="order_placed",
            payload={"order": 7},
            trigger_name=trigger.name,
            created_at=timezone.now(),
        )
        request = build_request(event, trigger, attempt=1)

        ok = requests.post(url, data=request.body, headers=request.headers, timeout=5)
        assert ok.status_code == 200, ok.text
        wait_until(lambda: f"order_placed {event.id}" in log.read_text())

        tampered = requests.post(
            url, data=request.body.replace(b"7", b"8"), headers=request.headers, timeout=5
        )
        assert tampered.status_code == 401
        forged_token = jwt.encode(
            {"id": "x", "role": "SpaceCloud", "iat": 1, "exp": 2**31},
            "someone-else-0123456789abcdef0123",
            algorithm="HS256",
        )
        forged = requests.post(
            url,
            data=request.body,
            timeout=5,
            headers={**request.headers, "X-SC-Token": f"Bearer {forged_token}"},
        )
        assert forged.status_code == 401
        assert "no accepted secret" in forged.json()["error"]
    finally:
        proc.terminate()
        proc.wait(10)
