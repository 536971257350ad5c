"""Notifications' entrypoints: the HTTP API (recipients, escalation levels,
inbox, live stream, acknowledgement) and the event and timer subscriptions."""
