"""The clinic network directory: sites, rooms, clinicians."""

from __future__ import annotations

from kap_shared.http.errors import ApiError, InvalidField, NotFound
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters.tables import Clinician, Room, Site
from ..domain.commands import AddRoom, CreateClinician, CreateSite, UpdateSite
from .plans import staff_waiting_plans


class AlreadyExists(ApiError):
    def __init__(self, what: str, ident: str) -> None:
        super().__init__(409, "already_exists", f"{what} {ident} already exists")


async def create_site(uow: UnitOfWork, cmd: CreateSite) -> Site:
    if await uow.session.get(Site, cmd.site_id):
        raise AlreadyExists("site", cmd.site_id)
    site = Site(**cmd.model_dump())
    uow.session.add(site)
    await uow.commit()
    return site


async def update_site(uow: UnitOfWork, site_id: str, cmd: UpdateSite) -> Site:
    """Change what was sent: e.g. renew a REMS certification (SPR-CERT-1), or withdraw
    it with `"rems_certified_until": null`."""
    site = await uow.session.get(Site, site_id)
    if site is None:
        raise NotFound("site", site_id)
    for field in cmd.model_fields_set:
        value = getattr(cmd, field)
        if value is None and field in ("name", "timezone"):
            raise InvalidField(field, "may not be null")
        setattr(site, field, value)
    uow.session.add(site)
    await uow.commit()
    return site


async def add_room(uow: UnitOfWork, site_id: str, cmd: AddRoom) -> Room:
    if await uow.session.get(Site, site_id) is None:
        raise NotFound("site", site_id)
    if await uow.session.get(Room, cmd.room_id):
        raise AlreadyExists("room", cmd.room_id)
    room = Room(site_id=site_id, **cmd.model_dump())
    uow.session.add(room)
    await uow.commit()
    return room


async def create_clinician(uow: UnitOfWork, cmd: CreateClinician) -> Clinician:
    if await uow.session.get(Clinician, cmd.clinician_id):
        raise AlreadyExists("clinician", cmd.clinician_id)
    for site_id in cmd.sites:
        if await uow.session.get(Site, site_id) is None:
            raise InvalidField("sites", f"unknown site {site_id}")
    clinician = Clinician(
        clinician_id=cmd.clinician_id,
        role=cmd.role.value,
        sites=cmd.sites,
        working_hours={
            day: {"start": h.start.isoformat(), "end": h.end.isoformat()}
            for day, h in cmd.working_hours.items()
        },
    )
    uow.session.add(clinician)
    await uow.session.flush()
    await staff_waiting_plans(uow, cmd.sites)
    await uow.commit()
    return clinician
