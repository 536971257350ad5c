"""Notifications' event handlers and use cases."""
