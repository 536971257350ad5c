"""Notifications' adapters: its tables (channels come with issue 4's work)."""
