"""Intake's state: what a referral and a screening know. No I/O."""

from __future__ import annotations

from datetime import date


def age_on(date_of_birth: date, day: date) -> int:
    """Whole years completed on `day` (a birthday counts on the day itself)."""
    years = day.year - date_of_birth.year
    if (day.month, day.day) < (date_of_birth.month, date_of_birth.day):
        years -= 1
    return years


def display_name(given_name: str, family_name: str) -> str:
    """What a screen shows to identify a patient in the room: the given name and the
    family name's initial (the minimum necessary of the record's PHI)."""
    initial = family_name.strip()[:1]
    return f"{given_name.strip()} {initial}." if initial else given_name.strip()
