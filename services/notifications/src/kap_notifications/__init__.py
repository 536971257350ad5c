"""Notifications service: routes platform events to clinicians on the right channel."""
