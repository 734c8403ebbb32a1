"""Old import paths that still work for one minor version, with a DeprecationWarning."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType

REMOVED_IN = "0.3.0"


class RemovedInEventing03Warning(DeprecationWarning):
    """A path or name that goes away in eventing 0.3.0 (shown with `python -W default`)."""


def forward(old: str, new: ModuleType) -> Callable[[str], object]:
    """A module `__getattr__` for the moved module `old`: every name is read from `new`, with a
    warning that points at the line that used the old path (a settings file, an import)."""

    def __getattr__(name: str) -> object:
        if name.startswith("__"):  # import machinery probing dunders: not a use of the path
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        value = getattr(new, name)  # an unknown name fails as it would on the new module
        warnings.warn(
            f"{old}.{name} moved to {new.__name__}.{name}; the path {old} is removed in "
            f"eventing {REMOVED_IN} (see CHANGELOG.md, Upgrading)",
            RemovedInEventing03Warning,
            stacklevel=2,
        )
        return value

    return __getattr__
