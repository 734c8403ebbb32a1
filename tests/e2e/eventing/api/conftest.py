"""The fixtures of eventing/api tests (tests.support.api_fixtures)."""

from tests.support.api_fixtures import (  # noqa: F401 - fixtures, found by name
    anon,
    fresh_trigger_index,
    open_type,
    plain,
    plain_user,
    staff,
    staff_user,
)
