"""The HTTP API of Eventing (Django REST framework): queue events, inspect them, manage triggers.

Mount it with `path("", include("eventing.api.urls"))`; see docs/api.md.
"""
