"""Notifications' use cases: routing events into notifications, escalation,
acknowledgement, the recipient directory and the delivery worker."""
