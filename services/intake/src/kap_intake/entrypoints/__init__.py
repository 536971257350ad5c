"""Intake's entrypoints: the HTTP API (intake consumes no events yet)."""
