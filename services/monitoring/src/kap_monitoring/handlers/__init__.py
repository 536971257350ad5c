"""Monitoring's event handlers and use cases."""
