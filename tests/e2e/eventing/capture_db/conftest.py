"""The fixtures of eventing/capture_db tests (tests.support.capture_db_fixtures)."""

from tests.support.capture_db_fixtures import (  # noqa: F401 - fixtures, found by name
    cluster,
    committed_database_mode,
    database_mode,
    expanded_before_reading,
)
