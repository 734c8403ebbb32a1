"""Template filters of Mission Control: `{% load mission_control %}`."""

from __future__ import annotations

from django import template

from ..display import display_time

register = template.Library()
register.filter("mc_time", display_time)
