"""Monitoring's domain: monitoring windows and safety rules. No I/O."""
