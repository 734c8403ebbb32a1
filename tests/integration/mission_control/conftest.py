"""The fixtures of mission_control tests (tests.support.mission_control_fixtures)."""

from tests.support.mission_control_fixtures import (  # noqa: F401 - fixtures, found by name
    _fresh_cache,
)
