"""Owners' subscriptions: the services the API, the portal and Mission Control share."""
