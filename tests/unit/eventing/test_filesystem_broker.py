"""eventing.dispatch.broker.FilesystemTransport: the embedded broker never hands out half a file."""

from __future__ import annotations

import json
import os
from queue import Empty

import pytest
from kombu import Connection
from kombu.transport import filesystem


@pytest.fixture
def folders(tmp_path):
    for sub in ("queue", "processed", "control"):
        (tmp_path / sub).mkdir()
    return {
        "data_folder_in": str(tmp_path / "queue"),
        "data_folder_out": str(tmp_path / "queue"),
        "processed_folder": str(tmp_path / "processed"),
        "control_folder": str(tmp_path / "control"),
        "store_processed": False,
    }


def channel(folders, transport="eventing.dispatch.broker:FilesystemTransport"):
    conn = Connection("filesystem://", transport=transport, transport_options=folders)
    return conn, conn.channel()


def test_a_message_being_written_is_invisible_to_consumers(folders, monkeypatch):
    conn, producer = channel(folders)
    _, consumer = channel(folders)
    seen_mid_write = []
    real_replace = os.replace

    def replace_after_a_poll(src, dst):
        # The moment kombu's own transport would expose an empty or partial file.
        try:
            seen_mid_write.append(consumer._get("q"))
        except Empty:
            seen_mid_write.append(None)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_a_poll)
    producer._put("q", {"body": "x" * 100_000})
    monkeypatch.setattr(os, "replace", real_replace)

    assert seen_mid_write == [None]
    assert consumer._get("q") == {"body": "x" * 100_000}
    assert os.listdir(folders["data_folder_in"]) == []
    conn.release()


def test_an_unreadable_file_is_skipped_not_fatal(folders):
    conn, ch = channel(folders)
    # What a writer killed mid-write (or kombu's own transport, polled mid-write) leaves behind.
    with open(os.path.join(folders["data_folder_in"], "1_dead.q.msg"), "wb"):
        pass
    ch._put("q", {"n": 1})

    assert ch._get("q") == {"n": 1}
    with pytest.raises(Empty):
        ch._get("q")
    conn.release()


def test_kombus_own_transport_dies_on_that_file(folders):
    """Why the subclass exists: the same file kills kombu's channel (and with it the worker)."""
    conn, ch = channel(folders, transport=filesystem.Transport)
    with open(os.path.join(folders["data_folder_in"], "1_dead.q.msg"), "wb"):
        pass
    with pytest.raises(json.JSONDecodeError):
        ch._get("q")
    conn.release()


def test_the_standalone_project_uses_it_for_the_filesystem_broker(settings):
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        pytest.skip("the stack runs another broker")
    assert settings.CELERY_BROKER_TRANSPORT == "eventing.dispatch.broker:FilesystemTransport"


def test_a_connection_to_the_folder_broker_does_not_warn_about_a_hostname(folders, caplog):
    conn, ch = channel(folders)
    ch._put("q", {"body": "x"})  # what a publish from `manage.py shell` does
    assert conn.info()["hostname"] is None
    assert not [r for r in caplog.records if r.name == "kombu.connection"]
    conn.release()
