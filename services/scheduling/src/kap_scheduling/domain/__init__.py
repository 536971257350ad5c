"""Scheduling's domain, pure Python (no I/O): protocols and care teams, the booking
rules (`booking`), a session's check-in, completion and the plan's phases
(`lifecycle`), what the coordinator should do next (`guidance`), and the rules'
ids and configurable defaults (`rules`, whose docstring is the table of rule ids)."""
