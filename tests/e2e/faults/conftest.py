"""The fixtures of faults tests (tests.support.faults_fixtures)."""

from tests.support.faults_fixtures import (  # noqa: F401 - fixtures, found by name
    cluster,
    receiver,
)
