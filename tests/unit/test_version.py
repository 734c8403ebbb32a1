"""The package's version, and the old import paths that still work for one minor version."""

from __future__ import annotations

import importlib
import logging.config
import re
import tomllib

import pytest
from kombu.utils.imports import symbol_by_name

import eventing
from eventing.capture import detached
from eventing.deprecation import RemovedInEventing03Warning
from eventing.dispatch import beat, broker
from eventing.ops import logs
from eventing.webhooks import ssrf
from tests.processes import ROOT


def test_version_is_the_one_pyproject_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert eventing.__version__ == declared
    assert re.fullmatch(r"\d+\.\d+\.\d+", declared)


def test_changelog_has_an_upgrading_section_for_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## (\d+\.\d+\.\d+)", changelog, flags=re.MULTILINE)
    assert versions[0] == eventing.__version__  # the newest entry is this version
    for version, body in zip(
        versions, re.split(r"^## \d+\.\d+\.\d+.*$", changelog, flags=re.MULTILINE)[1:], strict=True
    ):
        assert "### Upgrading" in body, f"{version} has no Upgrading section"


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("eventing.beat", beat, "beat_schedule"),
        ("eventing.broker", broker, "RedisTransport"),
        ("eventing.broker", broker, "FilesystemTransport"),
        ("eventing.logs", logs, "JsonFormatter"),
        ("eventing.logs", logs, "KeyValueFormatter"),
        ("eventing.logs", logs, "EventContextFilter"),
        ("eventing.ssrf", ssrf, "url_warning"),
        ("eventing.detached", detached, "flush"),
    ],
)
def test_an_old_path_gives_the_moved_object_with_a_deprecation_warning(old, new, name):
    module = importlib.import_module(old)
    with pytest.warns(RemovedInEventing03Warning, match=rf"{old}\.{name} moved to {new.__name__}"):
        assert getattr(module, name) is getattr(new, name)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018 - an unknown name fails as on the new module


def test_settings_written_for_the_old_paths_still_configure_celery_and_logging():
    with pytest.warns(RemovedInEventing03Warning, match="eventing.broker.RedisTransport"):
        assert symbol_by_name("eventing.broker:RedisTransport") is broker.RedisTransport
    with pytest.warns(RemovedInEventing03Warning, match=r"eventing\.logs\."):
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "filters": {"event_context": {"()": "eventing.logs.EventContextFilter"}},
                "formatters": {"kv": {"()": "eventing.logs.KeyValueFormatter"}},
                "handlers": {"probe": {"class": "logging.NullHandler", "formatter": "kv"}},
                "loggers": {"eventing.version_probe": {"handlers": ["probe"]}},
            }
        )
    (handler,) = logging.getLogger("eventing.version_probe").handlers
    assert isinstance(handler.formatter, logs.KeyValueFormatter)
    assert RemovedInEventing03Warning.__mro__[1] is DeprecationWarning
