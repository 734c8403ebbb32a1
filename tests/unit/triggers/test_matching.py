"""Filters, path patterns and watched fields."""

import pytest

from triggers.matching import matches_filter, matches_path, watched_change

DATA = {"new": {"status": "paid", "total": "10.00", "tags": None}, "old": None}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, True),
        ({"new.status": "paid"}, True),
        ({"new.status": "new"}, False),
        ({"new.status": ["paid", "shipped"]}, True),
        ({"new.status": ["new"]}, False),
        ({"new.status": {"in": ["paid"]}}, True),
        ({"new.status": {"not_in": ["paid"]}}, False),
        ({"new.status": {"ne": "new"}}, True),
        ({"new.missing": {"exists": False}}, True),
        ({"new.tags": {"exists": True}}, True),
        ({"new.missing": None}, False),
        ({"old.status": "paid"}, False),
        ({"new.status": "paid", "new.total": "10.00"}, True),
    ],
)
def test_filter(spec, expected):
    assert matches_filter(spec, DATA) is expected


def test_path_pattern():
    assert matches_path("", "anything")
    assert matches_path("avatars/*.png", "avatars/a.png")
    assert not matches_path("avatars/*.png", "avatars/a.jpg")
    assert not matches_path("avatars/*.png", "other/a.png")


def test_watched_change():
    assert watched_change((), [])
    assert watched_change(("status",), ["status", "note"])
    assert not watched_change(("status",), ["note"])
