"""HTTP API (CONTRACT section 4): the caller's inbox."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlmodel import col

from kap_shared.auth import Principal, current_principal
from kap_shared.messaging.unit_of_work import UnitOfWork
from kap_shared.service.runtime import ServiceRuntime

from ..adapters.tables import Notification, select

router = APIRouter(tags=["notifications"])

Caller = Annotated[Principal, Depends(current_principal)]


def _uow(request: Request) -> UnitOfWork:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime.unit_of_work()


Uow = Annotated[UnitOfWork, Depends(_uow)]


class NotificationView(BaseModel):
    notification_id: str
    source_event_id: str
    source_event_type: str
    channel: str
    priority: str
    title: str
    body: str
    site_id: str
    patient_id: str
    status: str
    created_at: datetime
    acknowledged_at: datetime | None


@router.get("/inbox", response_model=list[NotificationView])
async def inbox(
    principal: Caller, uow: Uow, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[NotificationView]:
    async with uow:
        query = select(Notification).where(Notification.recipient_id == principal.sub)
        if "*" not in principal.sites:
            # Filter by site before the limit, so other sites' rows never use up the page.
            query = query.where(col(Notification.site_id).in_(principal.sites))
        rows = await uow.session.exec(
            query.order_by(
                col(Notification.created_at).desc(), col(Notification.notification_id)
            ).limit(limit)
        )
        return [NotificationView(**n.model_dump()) for n in rows]
