"""Monitoring service: vitals, safety rules, discharge clearance, outcome measures."""
