"""The development sign-in list: "id:role:site|site,..." -> clinicians to choose from."""

from __future__ import annotations

from dataclasses import dataclass

from kap_shared.events.enums import Role


@dataclass(frozen=True)
class DevClinician:
    clinician_id: str
    role: Role
    sites: tuple[str, ...]


def parse_dev_clinicians(spec: str) -> list[DevClinician]:
    found = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        clinician_id, role, sites = entry.split(":", 2)
        found.append(DevClinician(clinician_id, Role(role), tuple(sites.split("|"))))
    return found
