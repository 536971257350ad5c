"""Notifications' entrypoints: HTTP API (inbox) and event subscriptions."""
