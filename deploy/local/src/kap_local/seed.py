"""Seed a demo clinic network through scheduling's public API (idempotent).

Used by `make run` and by the compose seed job; prints nothing it does not own.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from datetime import date, timedelta

import httpx

from kap_shared.auth import mint_token

# Demo contact points live under a documentation domain (RFC 2606 `example.org`):
# never deliverable, yet a syntactically valid address. Special-use names such as
# `.invalid` are refused by email-validator, and so by notifications (422).
DEMO_EMAIL_DOMAIN = "demo.example.org"
WEEKDAYS = {day: {"start": "08:00", "end": "18:00"} for day in ("mon", "tue", "wed", "thu", "fri")}


@dataclass(frozen=True)
class DemoClinician:
    clinician_id: str
    role: str
    sites: tuple[str, ...]


SITES = (
    # North is REMS certified for esketamine (SPR-CERT-1); South offers ketamine only.
    {
        "site_id": "site-north",
        "name": "North Clinic",
        "timezone": "America/New_York",
        "rems_certified_until": (date.today() + timedelta(days=365)).isoformat(),
    },
    {"site_id": "site-south", "name": "South Clinic", "timezone": "America/Chicago"},
)
ROOMS = {
    "site-north": [("north-room-1", "Treatment room 1"), ("north-room-2", "Treatment room 2")],
    "site-south": [("south-room-1", "Treatment room 1")],
}
CLINICIANS = (
    DemoClinician("dr-north", "prescriber", ("site-north",)),
    DemoClinician("th-north", "therapist", ("site-north",)),
    DemoClinician("rn-north", "nurse", ("site-north",)),
    DemoClinician("coord-north", "coordinator", ("site-north",)),
    DemoClinician("dr-south", "prescriber", ("site-south",)),
    DemoClinician("th-south", "therapist", ("site-south",)),
    DemoClinician("admin", "admin", ("site-north", "site-south")),
)


def _admin_client(base_url: str, secret: str) -> httpx.Client:
    """A client of one service, signed in as the seeding admin of every site."""
    token = mint_token(secret, sub="seed", role="admin", sites=["*"])
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _send(client: httpx.Client, method: str, path: str, body: dict[str, object]) -> None:
    response = client.request(method, path, json=body)
    # POST creates (409 already_exists: seeding twice is fine); PUT creates or replaces.
    done = (201, 409) if method == "POST" else (200, 201)
    if response.status_code not in done:
        raise RuntimeError(f"seeding {path} failed: {response.status_code} {response.text}")


def _post(client: httpx.Client, path: str, body: dict[str, object]) -> None:
    _send(client, "POST", path, body)


def _put(client: httpx.Client, path: str, body: dict[str, object]) -> None:
    _send(client, "PUT", path, body)


def seed_notifications(notifications_url: str, secret: str) -> None:
    """Contact points (demo addresses only) and each site's escalation levels."""
    with _admin_client(notifications_url, secret) as client:
        for clinician in CLINICIANS:
            if clinician.role == "admin":
                continue
            _put(
                client,
                f"/recipients/{clinician.clinician_id}",
                {
                    "role": clinician.role,
                    "sites": list(clinician.sites),
                    "email": f"{clinician.clinician_id}@{DEMO_EMAIL_DOMAIN}",
                    "phone": "+15550100" + str(CLINICIANS.index(clinician)).zfill(2),
                },
            )
        for site_id, prescriber, coordinator in (
            ("site-north", "dr-north", "coord-north"),
            ("site-south", "dr-south", "dr-south"),
        ):
            # An unacknowledged critical alert pages the prescriber again after 2
            # minutes, then the coordinator after 5.
            _put(
                client,
                f"/sites/{site_id}/escalation",
                {
                    "levels": [
                        {"after_seconds": 120, "recipient_ids": [prescriber]},
                        {"after_seconds": 300, "recipient_ids": [coordinator]},
                    ]
                },
            )


def seed(scheduling_url: str, secret: str) -> None:
    with _admin_client(scheduling_url, secret) as client:
        for site in SITES:
            _post(client, "/sites", dict(site))
        for site_id, rooms in ROOMS.items():
            for room_id, name in rooms:
                _post(client, f"/sites/{site_id}/rooms", {"room_id": room_id, "name": name})
        for clinician in CLINICIANS:
            if clinician.role == "admin":
                continue  # admins are token holders, not schedulable clinicians
            _post(
                client,
                "/clinicians",
                {
                    "clinician_id": clinician.clinician_id,
                    "role": clinician.role,
                    "sites": list(clinician.sites),
                    "working_hours": WEEKDAYS,
                },
            )


def demo_tokens(secret: str) -> dict[str, str]:
    return {
        c.clinician_id: mint_token(secret, sub=c.clinician_id, role=c.role, sites=list(c.sites))
        for c in CLINICIANS
    }


def dev_clinicians_spec() -> str:
    """The console's development sign-in list (DEV_CLINICIANS): id:role:site|site,..."""
    return ",".join(f"{c.clinician_id}:{c.role}:{'|'.join(c.sites)}" for c in CLINICIANS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Seed a demo clinic network")
    parser.add_argument(
        "--scheduling-url", default=os.environ.get("SCHEDULING_URL", "http://127.0.0.1:8002")
    )
    parser.add_argument(
        "--notifications-url",
        default=os.environ.get("NOTIFICATIONS_URL", "http://127.0.0.1:8004"),
    )
    parser.add_argument("--secret", default=os.environ.get("KAP_JWT_SECRET"))
    args = parser.parse_args(argv)
    if not args.secret:
        sys.stderr.write("KAP_JWT_SECRET (or --secret) is required\n")
        return 2
    seed(args.scheduling_url, args.secret)
    seed_notifications(args.notifications_url, args.secret)
    sys.stdout.write("demo clinic network seeded\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
