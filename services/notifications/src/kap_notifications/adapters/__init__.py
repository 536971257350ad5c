"""Notifications' adapters: its tables, the email and SMS channels, the
in-process inbox hub and its metrics."""
