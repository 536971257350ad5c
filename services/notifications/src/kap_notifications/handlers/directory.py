"""Recipients (PUT /recipients/{clinician_id}) and site escalation levels
(PUT /sites/{site_id}/escalation). Neither emits an event: contact details
are PHI-like and stay here, and the contract has no event for either.

Who may write a recipient (documented rule):
* an admin or coordinator whose token covers every site the entry lists,
  before and after the change (a coordinator cannot take over another site's
  clinician);
* the clinician themself, for their own entry, with the role their token
  carries, adding or removing only sites their token covers (the identity
  provider vouches for both).
Reading an entry (it holds contact details) is open to the clinician themself
and to admins/coordinators of one of the entry's sites.
"""

from __future__ import annotations

from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from kap_shared.auth import Principal
from kap_shared.events.enums import Role
from kap_shared.events.envelope import utc_now
from kap_shared.http.errors import ApiError, InvalidField, NotFound
from kap_shared.messaging.unit_of_work import UnitOfWork

from ..adapters.tables import EscalationPolicy, Recipient, RecipientSite, select
from ..domain.commands import PutEscalation, PutRecipient
from ..domain.escalation import Level, level_problems

MANAGERS = frozenset({Role.ADMIN, Role.COORDINATOR})


def _forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


async def recipient_sites(session: AsyncSession, clinician_id: str) -> list[str]:
    rows = await session.exec(
        select(RecipientSite.site_id)
        .where(RecipientSite.clinician_id == clinician_id)
        .order_by(col(RecipientSite.site_id))
    )
    return list(rows)


def _authorize_write(
    principal: Principal, clinician_id: str, cmd: PutRecipient, current_sites: list[str]
) -> None:
    if principal.role in MANAGERS:
        outside = sorted(
            s for s in {*cmd.sites, *current_sites} if not principal.can_access_site(s)
        )
        if outside:
            raise _forbidden(f"no access to site {', '.join(outside)}")
        return
    if principal.sub != clinician_id:
        raise _forbidden("only the clinician, or an admin or coordinator, may change a recipient")
    if cmd.role != principal.role.value:
        raise _forbidden(f"role {cmd.role} does not match your token's role {principal.role}")
    # Sites added or removed must be the token's; others stay as an admin set them.
    changed = set(cmd.sites) ^ set(current_sites)
    outside = sorted(s for s in changed if not principal.can_access_site(s))
    if outside:
        raise _forbidden(f"no access to site {', '.join(outside)}")


async def put_recipient(
    uow: UnitOfWork, clinician_id: str, cmd: PutRecipient, principal: Principal
) -> tuple[Recipient, list[str], bool]:
    """Create or replace the entry; returns it, its sites, and whether it was new."""
    session = uow.session
    current_sites = await recipient_sites(session, clinician_id)
    _authorize_write(principal, clinician_id, cmd, current_sites)
    recipient = await session.get(Recipient, clinician_id)
    created = recipient is None
    if recipient is None:
        recipient = Recipient(clinician_id=clinician_id, role=cmd.role, updated_by=principal.sub)
    quiet = cmd.quiet_hours
    recipient.role = cmd.role
    recipient.email = str(cmd.email) if cmd.email else None
    recipient.phone = cmd.phone
    recipient.channels = {p.value: [c.value for c in chans] for p, chans in cmd.channels.items()}
    recipient.quiet_start = quiet.start if quiet else None
    recipient.quiet_end = quiet.end if quiet else None
    recipient.quiet_timezone = quiet.timezone if quiet else None
    recipient.updated_by, recipient.updated_at = principal.sub, utc_now()
    session.add(recipient)
    await session.flush()
    for site_id in set(current_sites) - set(cmd.sites):
        link = await session.get(RecipientSite, (clinician_id, site_id))
        if link is not None:
            await session.delete(link)
    for site_id in set(cmd.sites) - set(current_sites):
        session.add(RecipientSite(clinician_id=clinician_id, site_id=site_id))
    await uow.commit()
    return recipient, sorted(cmd.sites), created


async def get_recipient(
    session: AsyncSession, clinician_id: str, principal: Principal
) -> tuple[Recipient, list[str]]:
    sites = await recipient_sites(session, clinician_id)
    is_self = principal.sub == clinician_id
    if not is_self:
        if principal.role not in MANAGERS:
            raise _forbidden("only the clinician, or an admin or coordinator, may read a recipient")
        if sites and not any(principal.can_access_site(s) for s in sites):
            raise _forbidden("no access to this recipient's sites")
    recipient = await session.get(Recipient, clinician_id)
    if recipient is None:
        raise NotFound("recipient", clinician_id)
    return recipient, sites


async def put_escalation(
    uow: UnitOfWork, site_id: str, cmd: PutEscalation, principal: Principal
) -> EscalationPolicy:
    levels = [Level(lv.after_seconds, tuple(lv.recipient_ids)) for lv in cmd.levels]
    problems = level_problems(levels)
    if problems:
        raise InvalidField(*problems[0])
    policy = await uow.session.get(EscalationPolicy, site_id)
    if policy is None:
        policy = EscalationPolicy(site_id=site_id, updated_by=principal.sub)
    policy.levels = [
        {"after_seconds": lv.after_seconds, "recipient_ids": list(lv.recipient_ids)}
        for lv in levels
    ]
    policy.updated_by, policy.updated_at = principal.sub, utc_now()
    uow.session.add(policy)
    await uow.commit()
    return policy
