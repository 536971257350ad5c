"""Intake's use cases: each one changes state and queues its events in one unit of work."""
