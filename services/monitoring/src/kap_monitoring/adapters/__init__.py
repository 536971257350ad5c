"""Monitoring's adapters: its tables."""
