"""Scheduling's domain: protocols, care teams and plan phases. No I/O."""
