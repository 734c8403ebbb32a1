"""Models the tests put triggers on."""
