"""Intake's domain: the patient's referral, screening rules and consent. No I/O."""
