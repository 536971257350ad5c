"""Notifications' domain: the routing table and message texts. No I/O."""
