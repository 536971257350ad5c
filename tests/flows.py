"""Reusable steps of the care pathway, driven over HTTP only."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from support import Api

from kap_local.platform import Platform

ADMIN = ("admin-1", "admin", ["*"])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Clinic:
    site_id: str
    prescriber: str
    therapist: str
    nurse: str

    def as_(self, who: str) -> tuple[str, str, list[str]]:
        role = {"prescriber": "prescriber", "therapist": "therapist", "nurse": "nurse"}[who]
        return (getattr(self, who), role, [self.site_id])


def apis(platform: Platform) -> dict[str, Api]:
    return {name: Api(platform.url(name), platform.jwt_secret) for name in platform.services}


async def create_clinic(platform: Platform) -> Clinic:
    api = apis(platform)["scheduling"]
    clinic = Clinic(unique("site"), unique("dr"), unique("th"), unique("rn"))
    response = await api.request(
        "POST", "/sites", as_=ADMIN, json_body={"site_id": clinic.site_id, "name": "Test clinic"}
    )
    assert response.status_code == 201, response.text
    response = await api.request(
        "POST",
        f"/sites/{clinic.site_id}/rooms",
        as_=ADMIN,
        json_body={"room_id": unique("room"), "name": "Room 1"},
    )
    assert response.status_code == 201, response.text
    for clinician_id, role in (
        (clinic.prescriber, "prescriber"),
        (clinic.therapist, "therapist"),
        (clinic.nurse, "nurse"),
    ):
        response = await api.request(
            "POST",
            "/clinicians",
            as_=ADMIN,
            json_body={"clinician_id": clinician_id, "role": role, "sites": [clinic.site_id]},
        )
        assert response.status_code == 201, response.text
    return clinic


REFERRAL = {
    "given_name": "Zelphine",
    "family_name": "Quorrowitz",
    "date_of_birth": "1985-04-12",
    "contact": {"phone": "+15550100", "email": "zq@clinic-mail.example"},
    "indications": ["trd"],
}

ELIGIBLE_SCREENING: dict[str, Any] = {
    "route": "iv",
    "contraindications": [],
    "phq9": [2, 2, 2, 2, 2, 2, 2, 2, 0],
    "gad7": [1, 1, 1, 1, 1, 1, 1],
    "vitals": {"bp_systolic": 124, "bp_diastolic": 78, "heart_rate": 72},
}


async def refer(platform: Platform, clinic: Clinic) -> str:
    """A nurse refers a patient at the clinic; the new patient's id."""
    response = await apis(platform)["intake"].request(
        "POST",
        "/patients",
        as_=clinic.as_("nurse"),
        json_body={**REFERRAL, "site_id": clinic.site_id},
    )
    assert response.status_code == 201, response.text
    patient_id: str = response.json()["patient_id"]
    return patient_id


async def refer_and_screen(platform: Platform, clinic: Clinic) -> str:
    """A referred patient screened eligible for IV ketamine (PatientScreened published)."""
    patient_id = await refer(platform, clinic)
    await screen_eligible(platform, clinic, patient_id)
    return patient_id


async def screen_eligible(platform: Platform, clinic: Clinic, patient_id: str) -> None:
    response = await apis(platform)["intake"].request(
        "POST",
        f"/patients/{patient_id}/screenings",
        as_=clinic.as_("nurse"),
        json_body=ELIGIBLE_SCREENING,
    )
    assert response.status_code == 201, response.text
    assert response.json()["outcome"] == "eligible"


async def refer_and_screen_many(
    platform: Platform, clinic: Clinic, count: int, *, concurrency: int = 1
) -> list[str]:
    """`count` patients referred and screened, `concurrency` at a time (1: in order)."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> str:
        async with semaphore:
            return await refer_and_screen(platform, clinic)

    return list(await asyncio.gather(*(one() for _ in range(count))))


# -- notifications' directory ---------------------------------------------------------------


async def register_recipient(
    platform: Platform,
    who: str,
    role: str,
    site_id: str,
    *,
    as_: tuple[str, str, list[str]] = ADMIN,
    **contact: str,
) -> None:
    """The clinician's entry in notifications' directory (PUT /recipients/{id}), by an
    admin: role, site and optional contact (phone, email)."""
    response = await apis(platform)["notifications"].request(
        "PUT",
        f"/recipients/{who}",
        as_=as_,
        json_body={"role": role, "sites": [site_id], **contact},
    )
    assert response.status_code in (200, 201), response.text


async def set_escalation(
    platform: Platform,
    site_id: str,
    levels: list[tuple[float, str]],
    *,
    as_: tuple[str, str, list[str]] = ADMIN,
) -> None:
    """The site's escalation ladder (PUT /sites/{id}/escalation): per level, after how
    many seconds unacknowledged, and whom it pages."""
    response = await apis(platform)["notifications"].request(
        "PUT",
        f"/sites/{site_id}/escalation",
        as_=as_,
        json_body={
            "levels": [{"after_seconds": after, "recipient_ids": [who]} for after, who in levels]
        },
    )
    assert response.status_code == 200, response.text
