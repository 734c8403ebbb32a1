"""YAML files the project reads: aliases are refused at once, naming the file and the line."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from eventing.management import yaml_files
from triggers.models import Trigger

pytestmark = pytest.mark.django_db

# A billion-laughs file like the issue's (608 bytes there, 342 here): nine levels of nine
# aliases, 9**9 strings once walked.
LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{chr(ord('a') + n)}: &{chr(ord('a') + n)} ["
        + ",".join([f"*{chr(ord('a') + n - 1)}"] * 9)
        + "]"
        for n in range(1, 9)
    ]
)


def import_file(*args: str) -> None:
    call_command("eventing_triggers", "import", *args, stdout=StringIO(), stderr=StringIO())


def small_bomb() -> str:
    """A trigger whose filter holds aliases: 10**4 strings once expanded, small enough for the
    code before this check to walk (and accept) quickly."""
    return (
        "version: 1\n"
        "event_types: []\n"
        "triggers:\n"
        "  - name: bomb\n"
        "    type: order_placed\n"
        "    url: http://127.0.0.1:9/hook\n"
        "    description: &d [x, x, x, x, x, x, x, x, x, x]\n"
        "    filter:\n"
        "      a: &a [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "      b: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    )


def test_an_alias_in_an_import_is_refused_naming_file_and_line(tmp_path):
    """Attack: nested YAML aliases expand a few hundred bytes into gigabytes (the issue's
    608-byte file took `eventing_triggers import` to 2.85 GB and a MemoryError).

    Now the first alias stops the import with the file and the line, and nothing is stored.
    """
    path = tmp_path / "triggers.yaml"
    path.write_text(small_bomb())
    with pytest.raises(CommandError) as info:
        import_file(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}, line 9,")
    assert "aliases" in message
    assert not Trigger.objects.exists()


@pytest.mark.parametrize("args", [(), ("--from-space-cloud",)])
def test_the_issues_alias_bomb_is_refused_before_it_expands(tmp_path, args):
    """Attack: the issue's billion-laughs file, as a trigger file and as a Space Cloud export.

    Refused at its second line, the first alias, before anything is expanded.
    """
    path = tmp_path / "laughs.yaml"
    path.write_text(LAUGHS + "\n")
    assert len(LAUGHS) < 700
    with pytest.raises(CommandError) as info:
        import_file(*args, str(path))
    assert str(info.value).startswith(f"{path}, line 2,")


def test_a_merge_key_is_an_alias_too(tmp_path):
    """`<<: *base` merges by alias: refused like any other alias."""
    path = tmp_path / "sc.yaml"
    path.write_text("base: &base {url: http://x}\ntrigger:\n  <<: *base\n")
    with pytest.raises(CommandError, match=r"line 3, column 7: aliases"):
        import_file("--from-space-cloud", str(path))


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path, monkeypatch):
    """The parsed data is never larger than the file: the file's size is the bound."""
    monkeypatch.setattr(yaml_files, "MAX_YAML_BYTES", 64)
    path = tmp_path / "big.yaml"
    path.write_text("version: 1\ntriggers: []\nevent_types: []\n# " + "x" * 64 + "\n")
    with pytest.raises(CommandError, match="more than the 64 bytes"):
        import_file(str(path))


def test_anchors_without_aliases_still_import(tmp_path):
    """An anchor alone expands nothing: a file that names one still imports."""
    path = tmp_path / "ok.yaml"
    path.write_text(
        "version: 1\nevent_types: []\ntriggers:\n"
        "  - &first {name: plain, type: order_placed, url: 'http://127.0.0.1:9/hook'}\n"
    )
    import_file(str(path))
    assert Trigger.objects.get(name="plain").url == "http://127.0.0.1:9/hook"
