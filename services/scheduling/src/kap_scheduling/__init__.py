"""Scheduling service: treatment plans, sessions, rooms and clinicians, gating rules."""
