"""`GET /live`: Server-Sent Events telling an open page what changed.

Each message is a `LiveEvent` (event type, site, patient and session ids,
severity: never PHI) for the signed-in clinician's sites only; the page then
fetches the affected card or list through the normal, authorized routes.

Each message's SSE id is the hub's position. A page opens the stream with `since`, the
position it was rendered at; the browser reconnects with `Last-Event-ID`. The stream
first sends what was missed since then, or a `resync` message when the hub cannot say
(the page then reads everything it shows again)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.sse import ServerSentEvent

from kap_shared.http.streams import Closed, EventStream, event_stream

from ..adapters.live import LiveHub
from .web import Session, settings_of

router = APIRouter(include_in_schema=False)


@router.get("/live", response_class=EventStream)
async def live(
    request: Request,
    sign_in: Session,
    since: str | None = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventStream:
    return event_stream(_changes(request, sign_in, last_event_id or since))


async def _changes(
    request: Request, sign_in: Session, since: str | None
) -> AsyncIterator[ServerSentEvent]:
    hub: LiveHub = request.app.state.live_hub
    keepalive = settings_of(request).sse_keepalive_seconds
    subscription = hub.subscribe(sign_in.principal.sites, since)
    try:
        if subscription.resync:
            yield ServerSentEvent(event="resync", raw_data='"unknown position"')
        yield ServerSentEvent(comment="connected", retry=2000, id=subscription.resume_from)
        while True:
            try:
                logged = await subscription.next(keepalive)
            except Closed:
                return
            if logged is None:
                yield ServerSentEvent(comment="keep-alive")
            else:
                yield ServerSentEvent(
                    event="change", raw_data=logged.event.to_json(), id=logged.position
                )
    finally:
        hub.unsubscribe(subscription)
