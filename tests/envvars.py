"""Which environment variables the standalone settings read (parsed from the source)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILE = ROOT / "config" / "settings.py"

# os.environ.get("X"…), os.environ["X"], os.getenv("X"…), env_bool("X"…), env_list("X"…)
READ_RE = re.compile(
    r"""(?:os\.environ\.get|os\.getenv|env_bool|env_list|env_int|env_float)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|os\.environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""
)


def settings_env_vars(path: Path = SETTINGS_FILE) -> set[str]:
    """Names of the environment variables `config/settings.py` reads."""
    source = path.read_text()
    return {first or second for first, second in READ_RE.findall(source)}
