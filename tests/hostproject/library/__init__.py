"""The host's own app: books."""
