"""Monitoring's entrypoints: HTTP API and event subscriptions."""
