"""Template filters of Mission Control."""
