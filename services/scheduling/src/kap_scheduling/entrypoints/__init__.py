"""Scheduling's entrypoints: HTTP API and event subscriptions."""
