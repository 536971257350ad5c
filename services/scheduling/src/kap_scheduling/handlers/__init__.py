"""Scheduling's use cases and event handlers."""
