"""Intake service: referrals, screening, baseline measures, consent."""
