"""System checks guarding reliability settings."""

from __future__ import annotations

import pytest
from celery import current_app

from eventing.checks import check_eta_horizon


@pytest.fixture
def visibility_timeout():
    """Set the broker's visibility_timeout for one test."""
    conf = current_app.conf
    saved = conf.broker_transport_options

    def set_timeout(seconds: int) -> None:
        conf.broker_transport_options = {**(saved or {}), "visibility_timeout": seconds}

    yield set_timeout
    conf.broker_transport_options = saved


def test_eta_horizon_beyond_visibility_timeout_warns(settings, visibility_timeout):
    settings.EVENTING = {**settings.EVENTING, "ETA_HORIZON_S": 300}
    visibility_timeout(120)
    [warning] = check_eta_horizon()
    assert warning.id == "eventing.W004"
    assert "120" in warning.msg
    assert "300" in warning.msg


def test_eta_horizon_below_visibility_timeout_is_fine(settings, visibility_timeout):
    settings.EVENTING = {**settings.EVENTING, "ETA_HORIZON_S": 300}
    visibility_timeout(3600)
    assert check_eta_horizon() == []
