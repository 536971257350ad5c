"""Scheduling's adapters: its database tables."""
