"""YAML read with bounded work: no aliases (so no expansion bomb) and a cap on the file's size."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

# Largest YAML file read; without aliases the parsed data is never larger than the file.
MAX_YAML_BYTES = 8 * 1024 * 1024


def yaml_module():
    """PyYAML, or a CommandError saying how to get it."""
    try:
        import yaml
    except ImportError:
        raise CommandError("YAML needs PyYAML (pip install PyYAML); or use JSON.") from None
    return yaml


def no_alias_loader():
    """A SafeLoader that refuses every alias (`*name`, and so `<<: *name` merges) where it is."""
    yaml = yaml_module()

    class NoAliasLoader(yaml.SafeLoader):
        """SafeLoader that stops at the first alias, naming its line."""

        def compose_node(self, parent, index):
            # A few hundred bytes of nested aliases expand to gigabytes: refuse them all.
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    "aliases (*name) are not accepted; write the value out in full",
                    event.start_mark,
                )
            return super().compose_node(parent, index)

    return NoAliasLoader


def load_yaml(text: str, path: str, *, stream: bool = False) -> Any:
    """The YAML document (with `stream`, every document); CommandError naming file and line."""
    yaml = yaml_module()
    size = len(text.encode("utf-8"))
    if size > MAX_YAML_BYTES:
        raise CommandError(
            f"{path}: {size} bytes is more than the {MAX_YAML_BYTES} bytes a YAML file may have."
        )
    loader = no_alias_loader()
    try:
        if stream:
            return list(yaml.load_all(text, Loader=loader))
        return yaml.load(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else path
        raise CommandError(f"{where}: {exc.problem or exc.context}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise CommandError(f"{path} is not valid yaml: {exc}") from None
