"""Trigger and event type definitions, their validation and matching."""
