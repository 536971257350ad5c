"""Notifications' domain: the routing table, channel choice, quiet hours,
retries and escalation levels. Pure Python, no I/O."""
